"""Export a torch model to ONNX the way the compiler wants it (BN folded, shapes constant)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import onnx
import onnxscript.optimizer
import torch
from torch import nn


def to_onnx(model: nn.Module, input_shape: tuple[int, ...], path: str | os.PathLike) -> Path:
    """Export `model` in eval mode for a fixed `input_shape` to `path`, atomically.

    Uses the dynamo exporter, then onnxscript's optimizer, which removes the `Constant(value_ints)`
    and shape `Expand` nodes TVM's importer rejects. Returns the path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    try:
        program = torch.onnx.export(model, (torch.zeros(input_shape),), dynamo=True,
                                    optimize=False, verbose=False)
    finally:
        model.train(was_training)
    proto = onnxscript.optimizer.optimize(program.model_proto)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        onnx.save_model(proto, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
