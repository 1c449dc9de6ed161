"""Symbolic input dimensions (`dynamic_axes={"x": {0: "N"}}`) bound to numbers before import:
the firmware has one fixed shape. The batch axis binds to 1 unless an input shape is given; any
other symbolic axis needs the input shape."""
from __future__ import annotations

import onnx

from edgeprune.errors import UnsupportedModelError


def _graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    weights = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in weights]


def _dims(info: onnx.ValueInfoProto):
    return info.type.tensor_type.shape.dim


def _label(dim) -> str:
    return repr(dim.dim_param) if dim.dim_param else "unnamed"


def _wanted(info: onnx.ValueInfoProto, input_shape: tuple[int, ...] | None) -> list[int | None]:
    """The value each axis of `info` should have: the given shape, else 1 for a symbolic batch axis;
    None keeps a fixed axis as it is."""
    dims = _dims(info)
    if input_shape is None:
        return [1 if axis == 0 and not dim.HasField("dim_value") else None for axis, dim in enumerate(dims)]
    if len(input_shape) != len(dims) or any(
            dim.HasField("dim_value") and dim.dim_value != size for dim, size in zip(dims, input_shape)):
        stated = tuple(d.dim_value if d.HasField("dim_value") else d.dim_param or "?" for d in dims)
        raise UnsupportedModelError(f"input shape {tuple(input_shape)} does not fit input {info.name!r} "
                                    f"of shape {stated}")
    return list(input_shape)


def bind_symbolic_dims(model: onnx.ModelProto,
                       input_shape: tuple[int, ...] | None = None) -> tuple[onnx.ModelProto, list[str]]:
    """The model with a number for every symbolic dimension of its inputs (the same number for outputs
    and intermediates that use the same name), and one sentence per bound axis. A symbolic axis other
    than the batch, with no `input_shape`, is an UnsupportedModelError naming it."""
    model = onnx.ModelProto.FromString(model.SerializeToString())  # the caller's model stays as it was
    inputs = _graph_inputs(model)
    if input_shape is not None and len(inputs) != 1:
        raise UnsupportedModelError(f"an input shape fixes a single input; the model has {len(inputs)}")
    bound: dict[str, int] = {}
    notes = []
    for info in inputs:
        for axis, (dim, size) in enumerate(zip(_dims(info), _wanted(info, input_shape))):
            if dim.HasField("dim_value"):
                continue
            if size is None:
                raise UnsupportedModelError(
                    f"input {info.name!r} axis {axis} is symbolic ({_label(dim)}) and is not the batch axis; "
                    f"give its size with --input-shape (input_shape=...)")
            notes.append(f"input {info.name!r} axis {axis}: symbolic {_label(dim)} bound to {size}")
            if dim.dim_param:
                bound[dim.dim_param] = size
            dim.dim_value = size
    for info in [*model.graph.output, *model.graph.value_info]:
        for dim in _dims(info):
            if dim.dim_param in bound:
                dim.dim_value = bound[dim.dim_param]
    return model, notes
