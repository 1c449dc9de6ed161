"""Export a torch model to ONNX the way the compiler wants it (BN folded, shapes constant)."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import onnxscript.optimizer
import torch
from torch import nn

from edgeprune._atomic import write_bytes_atomic


def to_onnx(model: nn.Module, input_shape: tuple[int, ...], path: str | os.PathLike) -> Path:
    """Export `model` in eval mode for a fixed `input_shape` to `path`, atomically.

    Uses the dynamo exporter, then onnxscript's optimizer, which removes the `Constant(value_ints)`
    and shape `Expand` nodes TVM's importer rejects. Returns the path written.
    """
    path = Path(path)
    # The exporter warns once per torchvision operator it cannot register; edgeprune uses none.
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    was_training = model.training
    model.eval()
    try:
        program = torch.onnx.export(model, (torch.zeros(input_shape),), dynamo=True,
                                    optimize=False, verbose=False)
    finally:
        model.train(was_training)
    proto = onnxscript.optimizer.optimize(program.model_proto)
    write_bytes_atomic(path, proto.SerializeToString())
    return path
