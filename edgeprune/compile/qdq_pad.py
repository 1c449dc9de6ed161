"""int8 Pad in QDQ models: `DequantizeLinear -> Pad -> QuantizeLinear` with one scale and zero point
pads the int8 tensor itself, its constant quantized as QuantizeLinear would (round half to even,
saturate): the same values onnxruntime computes in float. TVM's importer turns Pad into a kernel
that a Relax pattern cannot read the widths back from, so this happens in the ONNX graph."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from edgeprune.compile.opset import default_opset


def _constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}


def _same_parameters(dequantize: onnx.NodeProto, quantize: onnx.NodeProto, constants: dict) -> bool:
    pairs = list(zip(dequantize.input[1:3], quantize.input[1:3]))
    return (len(pairs) == 2 and all(a in constants and b in constants and constants[a].size == 1
                                    and np.array_equal(constants[a], constants[b]) for a, b in pairs)
            and constants[quantize.input[2]].dtype == np.int8)


def _quantized_value(pad: onnx.NodeProto, quantize: onnx.NodeProto, constants: dict) -> np.ndarray | None:
    """The int8 pad constant; None if the value is not a constant."""
    value = constants.get(pad.input[2]) if len(pad.input) > 2 and pad.input[2] else np.zeros((), np.float32)
    if value is None:
        return None
    scale, zero = float(constants[quantize.input[1]]), int(constants[quantize.input[2]])
    return np.array(np.clip(np.rint(float(value) / scale) + zero, -128, 127), np.int8)


def pad_int8(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str]]:
    """The model with every same-scale QDQ Pad on int8, and a note naming the pads."""
    if default_opset(model) < 11:  # Pad's value is an attribute (float) before opset 11
        return model, []
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph, constants = model.graph, _constants(model)
    users = {name: [n for n in graph.node if name in n.input] for node in graph.node for name in node.output}
    producer = {name: node for node in graph.node for name in node.output}
    moved = []
    for pad in [n for n in graph.node if n.op_type == "Pad" and n.domain in ("", "ai.onnx")]:
        dequantize, after = producer.get(pad.input[0]), users.get(pad.output[0], [])
        if (dequantize is None or dequantize.op_type != "DequantizeLinear" or len(users[dequantize.output[0]]) != 1
                or len(after) != 1 or after[0].op_type != "QuantizeLinear"
                or not _same_parameters(dequantize, after[0], constants)):
            continue
        mode = next((a.s.decode() for a in pad.attribute if a.name == "mode"), "constant")
        value = _quantized_value(pad, after[0], constants) if mode == "constant" else None
        if mode == "constant" and value is None:
            continue
        quantize = after[0]
        pad.input[0] = dequantize.input[0]
        if value is not None:
            name = f"{pad.output[0]}_int8_value"
            graph.initializer.append(numpy_helper.from_array(value, name))
            pad.input[:] = [*pad.input[:2], name, *pad.input[3:]]
        for node in graph.node:  # the quantize's users read the int8 pad
            node.input[:] = [pad.output[0] if i == quantize.output[0] else i for i in node.input]
        for output in graph.output:
            if output.name == quantize.output[0]:
                output.name = pad.output[0]
        for info in [v for v in graph.value_info if v.name == pad.output[0]]:  # it was float: now inferred
            graph.value_info.remove(info)
        graph.node.remove(dequantize)
        graph.node.remove(quantize)
        moved.append(pad.name or pad.output[0])
    if not moved:
        return model, []
    used = {name for node in graph.node for name in node.input}
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)
    return model, [f"QDQ Pad on int8 (same scale in and out): {', '.join(moved)}"]
