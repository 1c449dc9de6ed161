"""One small ONNX model per supported operator (built with onnx's helper), and its int8 QDQ twin.

MODELS maps each operator of edgeprune.compile.frontend.SUPPORTED_OPS to a function that builds a
float model exercising it; tests/test_onnx_ops.py compiles each for the M4 and compares it with
onnxruntime on QEMU. `quantized` wraps a float model's operator in a QDQ region the way
onnxruntime's quantizer does (int8 activations with a scale calibrated on the float outputs,
symmetric int8 weights, int32 biases)."""
from __future__ import annotations

from typing import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
SHAPE = [1, 4, 6, 6]  # NCHW input of every model but the matrix ones
_rng = np.random.default_rng(7)


def _model(nodes: list, inputs: dict[str, list[int]], outputs: dict[str, list[int]],
           constants: dict[str, np.ndarray] | None = None, opset: int = OPSET) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "op", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs.items()],
        [numpy_helper.from_array(v, n) for n, v in (constants or {}).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    onnx.checker.check_model(model, full_check=True)
    return model


def _unary(op: str, out_shape: list[int] | None = None, constants: dict | None = None, extra: tuple = (),
           opset: int = OPSET, **attrs) -> onnx.ModelProto:
    node = helper.make_node(op, ["x", *extra], ["y"], **attrs)
    return _model([node], {"x": SHAPE}, {"y": out_shape or SHAPE}, constants, opset)


def _f32(*shape: int, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    return _rng.uniform(low, high, shape).astype(np.float32)


def _i64(*values: int) -> np.ndarray:
    return np.array(values, np.int64)


def _binary(op: str) -> onnx.ModelProto:
    """`op` of two inputs that broadcast ((1, 4, 1, 6) against (1, 4, 6, 6)), then of a per-channel constant."""
    nodes = [helper.make_node(op, ["x", "z"], ["h"]), helper.make_node(op, ["h", "c"], ["y"])]
    constant = _f32(4, 1, 1, low=0.5, high=1.5)
    return _model(nodes, {"x": SHAPE, "z": [1, 4, 1, 6]}, {"y": SHAPE}, {"c": constant})


def _two_inputs(op: str) -> onnx.ModelProto:
    """`op` of two inputs that broadcast ((1, 4, 6, 6) against (1, 4, 1, 6)): its QDQ twin is all int8."""
    return _model([helper.make_node(op, ["x", "z"], ["y"])], {"x": SHAPE, "z": [1, 4, 1, 6]}, {"y": SHAPE})


def _resize(mode: str, **attrs) -> onnx.ModelProto:
    return _unary("Resize", [1, 4, 12, 12], {"s": np.array([1, 1, 2, 2], np.float32)}, ("", "s"), mode=mode, **attrs)


def _split() -> onnx.ModelProto:
    nodes = [helper.make_node("Split", ["x", "parts"], ["a", "b"], axis=1),
             helper.make_node("Sub", ["a", "b"], ["y"])]
    return _model(nodes, {"x": SHAPE}, {"y": [1, 2, 6, 6]}, {"parts": _i64(2, 2)})


def _quantized_relu() -> onnx.ModelProto:
    """QuantizeLinear, DequantizeLinear, Relu, QuantizeLinear, DequantizeLinear: int8 in and out."""
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("QuantizeLinear", ["r", "s", "z"], ["qy"]),
             helper.make_node("DequantizeLinear", ["qy", "s", "z"], ["y"])]
    return _model(nodes, {"x": SHAPE}, {"y": SHAPE}, {"s": np.array(0.02, np.float32), "z": np.array(-3, np.int8)})


def _identity() -> onnx.ModelProto:
    nodes = [helper.make_node("Relu", ["x"], ["h"]), helper.make_node("Identity", ["h"], ["i"]),
             helper.make_node("Sigmoid", ["i"], ["y"])]
    return _model(nodes, {"x": SHAPE}, {"y": SHAPE})


def _conv() -> onnx.ModelProto:
    return _unary("Conv", [1, 8, 6, 6], {"w": _f32(8, 4, 3, 3), "b": _f32(8)}, ("w", "b"), pads=[1, 1, 1, 1])


def _conv_clip() -> onnx.ModelProto:
    """Conv, then Clip-6 (bounds as attributes)."""
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Clip", ["c"], ["y"], min=0.0, max=1.0)]
    return _model(nodes, {"x": SHAPE}, {"y": [1, 8, 6, 6]}, {"w": _f32(8, 4, 3, 3), "b": _f32(8)}, opset=10)


def _gemm() -> onnx.ModelProto:
    node = helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)
    return _model([node], {"x": [1, 16]}, {"y": [1, 8]}, {"w": _f32(8, 16), "b": _f32(8)})


def _matmul() -> onnx.ModelProto:
    return _model([helper.make_node("MatMul", ["x", "w"], ["y"])], {"x": [1, 16]}, {"y": [1, 8]}, {"w": _f32(16, 8)})


def _batchnorm() -> onnx.ModelProto:
    constants = {"g": _f32(4, low=0.5, high=1.5), "b": _f32(4), "m": _f32(4), "v": _f32(4, low=0.5, high=1.5)}
    return _unary("BatchNormalization", None, constants, ("g", "b", "m", "v"))


def _concat() -> onnx.ModelProto:
    nodes = [helper.make_node("Concat", ["x", "z"], ["y"], axis=1)]
    return _model(nodes, {"x": SHAPE, "z": [1, 2, 6, 6]}, {"y": [1, 6, 6, 6]})


def _constant() -> onnx.ModelProto:
    value = numpy_helper.from_array(_f32(1, 4, 1, 1), "k")
    nodes = [helper.make_node("Constant", [], ["k"], value=value), helper.make_node("Add", ["x", "k"], ["y"])]
    return _model(nodes, {"x": SHAPE}, {"y": SHAPE})


def _softmax() -> onnx.ModelProto:
    return _model([helper.make_node("Softmax", ["x"], ["y"], axis=1)], {"x": [1, 10]}, {"y": [1, 10]})


def _upsample(mode: str) -> onnx.ModelProto:
    return _unary("Upsample", [1, 4, 12, 18], {"s": np.array([1, 1, 2, 3], np.float32)}, ("s",), opset=9, mode=mode)


# Each operator's float model builders (several where the operator has modes worth testing).
MODELS: dict[str, dict[str, Callable[[], onnx.ModelProto]]] = {
    "Add": {"broadcast": lambda: _binary("Add"),
            "same shape": lambda: _model([helper.make_node("Add", ["x", "z"], ["y"])], {"x": SHAPE, "z": SHAPE},
                                         {"y": SHAPE})},
    "AveragePool": {"3x3 s1 p1": lambda: _unary("AveragePool", None, kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
                    "2x2 s2": lambda: _unary("AveragePool", [1, 4, 3, 3], kernel_shape=[2, 2], strides=[2, 2])},
    "BatchNormalization": {"": _batchnorm},
    "Clip": {"0..0.5": lambda: _unary("Clip", None, {"lo": np.array(0, np.float32), "hi": np.array(0.5, np.float32)},
                                      ("lo", "hi")),
             "Clip-6 after Conv": _conv_clip},
    "Concat": {"channels": _concat},
    "Constant": {"": _constant},
    "Conv": {"3x3 p1": _conv},
    "ConvTranspose": {
        "3x3 s2 out-pad 1": lambda: _unary("ConvTranspose", [1, 3, 12, 12], {"w": _f32(4, 3, 3, 3), "b": _f32(3)},
                                           ("w", "b"), strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1]),
        "4x4 s2 groups 2": lambda: _unary("ConvTranspose", [1, 4, 12, 12], {"w": _f32(4, 2, 4, 4)}, ("w",),
                                          strides=[2, 2], pads=[1, 1, 1, 1], group=2),
    },
    "DequantizeLinear": {"": _quantized_relu},
    "Div": {"broadcast": lambda: _binary("Div")},
    "Elu": {"": lambda: _unary("Elu", alpha=0.8)},
    "Flatten": {"": lambda: _unary("Flatten", [1, 144])},
    "Gemm": {"": _gemm},
    "GlobalAveragePool": {"": lambda: _unary("GlobalAveragePool", [1, 4, 1, 1])},
    "GlobalMaxPool": {"": lambda: _unary("GlobalMaxPool", [1, 4, 1, 1])},
    "HardSigmoid": {"": lambda: _unary("HardSigmoid", alpha=0.25, beta=0.4)},
    "HardSwish": {"": lambda: _unary("HardSwish")},
    "Identity": {"": _identity},
    "LeakyRelu": {"": lambda: _unary("LeakyRelu", alpha=0.1)},
    "MatMul": {"": _matmul},
    "MaxPool": {"2x2 s2": lambda: _unary("MaxPool", [1, 4, 3, 3], kernel_shape=[2, 2], strides=[2, 2])},
    "Mul": {"broadcast": lambda: _binary("Mul"), "two inputs": lambda: _two_inputs("Mul")},
    "Pad": {
        "constant": lambda: _unary("Pad", [1, 4, 9, 8],
                                   {"p": _i64(0, 0, 1, 2, 0, 0, 2, 0), "v": np.array(0.25, np.float32)}, ("p", "v"),
                                   mode="constant"),
        "reflect": lambda: _unary("Pad", [1, 4, 8, 9], {"p": _i64(0, 0, 1, 1, 0, 0, 1, 2)}, ("p",), mode="reflect"),
        "edge": lambda: _unary("Pad", [1, 4, 8, 9], {"p": _i64(0, 0, 1, 1, 0, 0, 1, 2)}, ("p",), mode="edge"),
    },
    "PRelu": {"per channel": lambda: _unary("PRelu", None, {"a": _f32(4, 1, 1, low=0, high=0.5)}, ("a",))},
    "QuantizeLinear": {"": _quantized_relu},
    "ReduceMax": {"spatial": lambda: _unary("ReduceMax", [1, 4, 1, 1], {"axes": _i64(2, 3)}, ("axes",), opset=18)},
    "ReduceMean": {"spatial": lambda: _unary("ReduceMean", [1, 4, 1, 1], axes=[2, 3])},
    "Relu": {"": lambda: _unary("Relu")},
    "Reshape": {"": lambda: _unary("Reshape", [1, 4, 36], {"s": _i64(1, 4, 36)}, ("s",))},
    "Resize": {
        "nearest x2": lambda: _resize("nearest"),
        "bilinear x2": lambda: _resize("linear"),
        "bilinear align-corners": lambda: _unary("Resize", [1, 4, 11, 9], {"n": _i64(1, 4, 11, 9)}, ("", "", "n"),
                                                 mode="linear", coordinate_transformation_mode="align_corners"),
    },
    "Sigmoid": {"": lambda: _unary("Sigmoid")},
    "Softmax": {"": _softmax},
    "Split": {"channels": _split},
    "Squeeze": {"": lambda: _unary("Squeeze", [4, 6, 6], {"a": _i64(0)}, ("a",))},
    "Sub": {"broadcast": lambda: _binary("Sub"), "two inputs": lambda: _two_inputs("Sub")},
    "Tanh": {"": lambda: _unary("Tanh")},
    "Transpose": {"": lambda: _unary("Transpose", [1, 6, 6, 4], perm=[0, 2, 3, 1])},
    "Unsqueeze": {"": lambda: _unary("Unsqueeze", [1, 1, 4, 6, 6], {"a": _i64(1)}, ("a",))},
    "Upsample": {"nearest x2,x3": lambda: _upsample("nearest"), "linear x2,x3": lambda: _upsample("linear")},
}


# The operators with an int8 lowering: the variant whose QDQ twin is compiled, and its output's
# quantization: "same" (the input's scale and zero point, as onnxruntime's quantizer gives ops that
# move data), "calibrated" (the range of the float output), or "as is" (the model is already QDQ).
INT8: dict[str, tuple[str, str]] = {
    "Add": ("same shape", "calibrated"), "AveragePool": ("2x2 s2", "calibrated"),
    "Concat": ("channels", "same"),
    "Conv": ("3x3 p1", "calibrated"), "DequantizeLinear": ("", "as is"), "Elu": ("", "calibrated"),
    "Flatten": ("", "same"), "Gemm": ("", "calibrated"), "GlobalAveragePool": ("", "calibrated"),
    "GlobalMaxPool": ("", "same"), "HardSigmoid": ("", "calibrated"), "HardSwish": ("", "calibrated"),
    "LeakyRelu": ("", "calibrated"), "MaxPool": ("2x2 s2", "same"), "Mul": ("two inputs", "calibrated"), "Pad": ("constant", "same"),
    "PRelu": ("per channel", "calibrated"), "QuantizeLinear": ("", "as is"), "ReduceMax": ("spatial", "same"),
    "ReduceMean": ("spatial", "calibrated"), "Relu": ("", "same"), "Reshape": ("", "same"),
    "Resize": ("nearest x2", "same"), "Sigmoid": ("", "calibrated"), "Squeeze": ("", "same"),
    "Sub": ("two inputs", "calibrated"),
    "Tanh": ("", "calibrated"), "Transpose": ("", "same"), "Unsqueeze": ("", "same"),
}


def cases() -> list[tuple[str, str]]:
    """(operator, variant) of every model."""
    return [(op, variant) for op, variants in sorted(MODELS.items()) for variant in variants]


def int8_model(op: str) -> onnx.ModelProto:
    """The QDQ model of `op`'s int8 case."""
    variant, output = INT8[op]
    model = MODELS[op][variant]()
    return model if output == "as is" else quantized(model, same_scale=output == "same")


def _quantized_weights(graph: onnx.GraphProto, input_scale: float) -> list[onnx.NodeProto]:
    """Conv and Gemm weights as symmetric int8 and biases as int32 (scale input x weight scale),
    each dequantized by a DequantizeLinear node (returned), as onnxruntime's quantizer stores them."""
    initializers = {i.name: i for i in graph.initializer}
    nodes = []
    for node in [n for n in graph.node if n.op_type in ("Conv", "Gemm")]:
        weight = numpy_helper.to_array(initializers[node.input[1]])
        scale = float(np.abs(weight).max()) / 127
        parts = [(node.input[1], np.round(weight / scale).astype(np.int8), scale)]
        if len(node.input) > 2:
            bias = numpy_helper.to_array(initializers[node.input[2]])
            parts.append((node.input[2], np.round(bias / (input_scale * scale)).astype(np.int32), input_scale * scale))
        for name, values, part_scale in parts:
            graph.initializer.remove(initializers[name])
            graph.initializer.extend([numpy_helper.from_array(values, f"{name}_q"),
                                      numpy_helper.from_array(np.array(part_scale, np.float32), f"{name}_scale"),
                                      numpy_helper.from_array(np.zeros((), values.dtype), f"{name}_zero")])
            nodes.append(helper.make_node("DequantizeLinear", [f"{name}_q", f"{name}_scale", f"{name}_zero"], [name]))
    return nodes


def quantized(model: onnx.ModelProto, same_scale: bool = False, input_scale: float = 4 / 128,
              input_zero_point: int = 5) -> onnx.ModelProto:
    """`model` as a QDQ model: each float input quantized (`input_scale`, `input_zero_point`) and
    dequantized, each output quantized and dequantized with the input's scale and zero point if
    `same_scale` (as onnxruntime's quantizer does for ops that move data), else with those that
    cover its range (onnxruntime's float outputs over random int8 inputs, as a calibration finds)."""
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    inputs = {i.name: ((rng.integers(-128, 128, [d.dim_value for d in i.type.tensor_type.shape.dim])
                        - input_zero_point) * input_scale).astype(np.float32) for i in model.graph.input}
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = dict(zip((o.name for o in model.graph.output), session.run(None, inputs)))
    graph = onnx.ModelProto.FromString(model.SerializeToString()).graph
    constants = {"x_scale": np.array(input_scale, np.float32), "x_zero": np.array(input_zero_point, np.int8)}
    front, back = [], []
    for name in inputs:
        for node in graph.node:
            node.input[:] = [f"{name}_dq" if i == name else i for i in node.input]
        front += [helper.make_node("QuantizeLinear", [name, "x_scale", "x_zero"], [f"{name}_q"]),
                  helper.make_node("DequantizeLinear", [f"{name}_q", "x_scale", "x_zero"], [f"{name}_dq"])]
    for name, value in outputs.items():
        low, high = min(float(value.min()), 0.0), max(float(value.max()), 0.0)
        scale = input_scale if same_scale else max(high - low, 1e-6) / 255
        zero = input_zero_point if same_scale else np.clip(round(-128 - low / scale), -128, 127)
        constants[f"{name}_scale"] = np.array(scale, np.float32)
        constants[f"{name}_zero"] = np.array(zero, np.int8)
        for node in graph.node:
            node.output[:] = [f"{name}_f" if o == name else o for o in node.output]
        back += [helper.make_node("QuantizeLinear", [f"{name}_f", f"{name}_scale", f"{name}_zero"], [f"{name}_q"]),
                 helper.make_node("DequantizeLinear", [f"{name}_q", f"{name}_scale", f"{name}_zero"], [name])]
    nodes = front + _quantized_weights(graph, input_scale) + list(graph.node) + back
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(numpy_helper.from_array(v, n) for n, v in constants.items())
    qdq = helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    onnx.checker.check_model(qdq, full_check=True)
    return qdq
