"""A QDQ model's float edges: the input QuantizeLinear and output DequantizeLinear come off, so the
compiled model takes and returns int8, with each edge's scale and zero point recorded for the C
header (and its optional float wrappers)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from edgeprune.errors import UnsupportedOpError


@dataclass(frozen=True)
class EdgeQuantization:
    """An int8 edge's quantization; `rounding` is how its float wrapper rounds: "half_even" as
    onnxruntime's QuantizeLinear, "half_away" as TFLM's QUANTIZE. `api_dtype` is what the C API
    takes or returns there: int8, or float32 (converted in edgeprune_invoke, as a .tflite with
    float edges declares its tensors)."""

    name: str
    scale: float
    zero_point: int
    rounding: str = "half_even"
    api_dtype: str = "int8"

    def to_dict(self) -> dict:
        return asdict(self)


def is_quantized(model: onnx.ModelProto) -> bool:
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node)


def _scalar(model: onnx.ModelProto, name: str) -> np.ndarray:
    for init in model.graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init).reshape(-1)
    raise UnsupportedOpError(f"quantization parameter {name} is not a constant")


def _value_info(name: str, elem_type: int, like: onnx.ValueInfoProto) -> onnx.ValueInfoProto:
    dims = [d.dim_value for d in like.type.tensor_type.shape.dim]
    return onnx.helper.make_tensor_value_info(name, elem_type, dims)


def _take_edge(model: onnx.ModelProto, values, position: int, edge: onnx.ValueInfoProto,
               node: onnx.NodeProto, tensor: str) -> EdgeQuantization:
    """Put the int8 `tensor` in place of the graph input/output `edge`, drop its quantize or
    dequantize `node`, and return that node's scale and zero point."""
    scale, zero = _scalar(model, node.input[1]), _scalar(model, node.input[2])
    values.remove(edge)
    values.insert(position, _value_info(tensor, onnx.TensorProto.INT8, edge))
    model.graph.node.remove(node)
    return EdgeQuantization(tensor, float(scale[0]), int(zero[0]))


def strip_qdq_edges(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[EdgeQuantization], list[EdgeQuantization]]:
    """The model with int8 inputs/outputs in place of its quantize/dequantize edges."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    inputs, outputs = [], []
    for position, graph_input in enumerate(list(graph.input)):
        users = [n for n in graph.node if graph_input.name in n.input]
        if len(users) != 1 or users[0].op_type != "QuantizeLinear":
            raise UnsupportedOpError(
                f"input {graph_input.name} of a quantized model must feed exactly one QuantizeLinear "
                f"(it feeds {', '.join(n.op_type for n in users) or 'nothing'}); float ops at the input are not lowered"
            )
        inputs.append(_take_edge(model, graph.input, position, graph_input, users[0], users[0].output[0]))
    for position, graph_output in enumerate(list(graph.output)):
        producers = [n for n in graph.node if graph_output.name in n.output]
        if len(producers) != 1 or producers[0].op_type != "DequantizeLinear":
            op = producers[0].op_type if producers else "nothing"
            raise UnsupportedOpError(
                f"output {graph_output.name} of a quantized model comes from {op}, not DequantizeLinear; "
                "float ops after the last DequantizeLinear are not lowered to integers"
            )
        outputs.append(_take_edge(model, graph.output, position, graph_output, producers[0], producers[0].input[0]))
    return model, inputs, outputs
