"""Export a torch model to ONNX the way the compiler wants it (BN folded, shapes constant)."""
from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import onnxscript.optimizer
import torch
from torch import nn
from torch.onnx import _constants
from torch.onnx._internal.exporter import _core, _registration

from edgeprune._atomic import write_bytes_atomic


def to_onnx(model: nn.Module, input_shape: tuple[int, ...], path: str | os.PathLike) -> Path:
    """Export `model` in eval mode for a fixed `input_shape` to `path`, atomically.

    Uses the dynamo exporter (as `torch.onnx.export(dynamo=True)` calls it, with one operator
    registry for every export), then onnxscript's optimizer, which removes the `Constant(value_ints)`
    and shape `Expand` nodes TVM's importer rejects. Returns the path written.
    """
    path = Path(path)
    # The exporter warns once per torchvision operator it cannot register; edgeprune uses none.
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    was_training = model.training
    model.eval()
    try:
        program = _core.export(model, (torch.zeros(input_shape),), registry=_torchlib_registry(),
                               optimize=False, verbose=False, opset_version=_constants.ONNX_DEFAULT_OPSET)
    finally:
        model.train(was_training)
    proto = onnxscript.optimizer.optimize(program.model_proto)
    write_bytes_atomic(path, proto.SerializeToString())
    return path


@functools.cache
def _torchlib_registry() -> _registration.ONNXRegistry:
    """torch's table of ONNX decompositions: `torch.onnx.export` builds it anew on every call (0.8 s
    of a small model's 1.9 s); it is only read, so one serves every export."""
    return _registration.ONNXRegistry.from_torchlib(opset_version=_constants.ONNX_DEFAULT_OPSET)
