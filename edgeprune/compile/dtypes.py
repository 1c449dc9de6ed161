"""Element types the compiler takes: float32 models, int8 QDQ models; other floating types are refused."""
from __future__ import annotations

from collections.abc import Iterator

import onnx
from onnx import TensorProto

from edgeprune.errors import UnsupportedModelError

# Floating types the kernels and the C driver have no type for.
REFUSED = (TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16)


def _typed_tensors(graph: onnx.GraphProto) -> Iterator[tuple[str, str, int]]:
    """(tensor name, where it is, element type) of every tensor whose type the graph states."""
    for what, infos in (("input", graph.input), ("output", graph.output), ("intermediate", graph.value_info)):
        for info in infos:
            yield info.name, what, info.type.tensor_type.elem_type
    for init in graph.initializer:
        yield init.name, "weight", init.data_type
    for node in graph.node:
        for attr in node.attribute:
            if node.op_type == "Constant" and attr.type == onnx.AttributeProto.TENSOR:
                yield node.output[0], f"constant of node {node.name!r}", attr.t.data_type
            if node.op_type == "Cast" and attr.name == "to":
                yield node.output[0], f"cast by node {node.name!r}", attr.i


def check_dtypes(model: onnx.ModelProto) -> None:
    """Raise UnsupportedModelError naming the first tensor of a floating type other than float32."""
    for name, what, elem_type in _typed_tensors(model.graph):
        if elem_type in REFUSED:
            dtype = onnx.helper.tensor_dtype_to_np_dtype(elem_type).name
            raise UnsupportedModelError(
                f"tensor {name!r} ({what}) is {dtype}; edgeprune compiles float32 models (and int8 QDQ "
                f"ones): export the model in float32 (in torch: model.float() and a float32 example input)")
