"""Model in: an int8 `.tflite` file becomes the Relax QDQ form that the ONNX route produces.

Each TFLite operator becomes `quantize(float op(dequantize(inputs)))` with the file's own int8
weights, per-channel scales and int32 biases as constants, which LowerQDQToInteger turns into the
same integer-only kernels as a QDQ ONNX model. The graph keeps the ONNX route's op conventions
(NCHW conv2d with OIHW weights, depthwise as groups = C); a 4-D TFLite tensor is held as NCHW
inside, with permute_dims at the model's edges and around the layout-sensitive ops, so that the
compiled model takes and returns the tensors exactly as the file declares them (NHWC, int8, its
scale and zero point). What TFLM computes without a float equivalent (its fixed-point softmax) is
emitted as its integer kernel directly."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import tvm
from tvm import relax
from tvm.relax import op as R

from edgeprune.compile import int8_hard_swish, int8_kernels, int8_logistic, int8_softmax, sources
from edgeprune.compile.int8 import INT8_MAX, INT8_MIN, OPAQUE
from edgeprune.compile.int8_kernels import Requantize
from edgeprune.compile.qdq_edges import EdgeQuantization
from edgeprune.compile.requantize import quantize_multiplier
from edgeprune.compile.tflite_reader import Graph, Operator, Tensor, read_tflite
from edgeprune.errors import UnsupportedOpError

# Builtin operators and the highest version imported; each is compared with TFLM in tests/test_tflite.py.
SUPPORTED_OPS: dict[str, int] = {
    "ADD": 2, "AVERAGE_POOL_2D": 2, "CONCATENATION": 2, "CONV_2D": 3, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 4,
    "HARD_SWISH": 1, "LOGISTIC": 2, "MAX_POOL_2D": 2, "MEAN": 2, "MUL": 3, "PAD": 2, "PADV2": 2, "QUANTIZE": 2,
    "RESHAPE": 1, "SOFTMAX": 2, "SQUEEZE": 1, "STRIDED_SLICE": 2, "SUB": 2, "TANH": 2,
}
EDGE_OPS: dict[str, int] = {"DEQUANTIZE": 2}  # compiled where it writes a float model output (taken off)
_ACTIVATIONS = {0: None, 1: (0.0, None), 2: (-1.0, 1.0), 3: (0.0, 6.0)}  # NONE, RELU, RELU_N1_TO_1, RELU6
_TO_NCHW, _TO_NHWC = [0, 3, 1, 2], [0, 2, 3, 1]
_NHWC_AXIS_IN_NCHW = {0: 0, 1: 2, 2: 3, 3: 1}


def _versions(version: int) -> str:
    return f"1-{version}" if version > 1 else "1"


def supported_ops() -> list[tuple[str, str]]:
    """(operator, versions) of every TFLite builtin that compiles, for errors and the README."""
    return sorted([*((name, _versions(v)) for name, v in SUPPORTED_OPS.items()),
                   *((name, f"{_versions(v)} (at model outputs)") for name, v in EDGE_OPS.items())])


def _supported_text() -> str:
    return ", ".join(f"{name} v{versions}" for name, versions in supported_ops())


def _same_padding(size: int, stride: int, kernel: int, dilation: int) -> tuple[int, int]:
    """TFLite's SAME padding (the odd pixel after), as TFLM's ComputePaddingHeightWidth."""
    out = (size + stride - 1) // stride
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _padding(options, x: Tensor, kernel_h: int, kernel_w: int, dilation=(1, 1)) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of an NHWC input for SAME (padding 0) or VALID (1)."""
    if options.Padding() != 0:
        return 0, 0, 0, 0
    top, bottom = _same_padding(x.shape[1], options.StrideH(), kernel_h, dilation[0])
    left, right = _same_padding(x.shape[2], options.StrideW(), kernel_w, dilation[1])
    return top, left, bottom, right


def _mean_multiplier(input_scale: float, output_scale: float, count: int) -> tuple[int, int]:
    """TFLM's MEAN rescale: input/output scale as Q31, the division by `count` folded in as
    (multiplier << k) // count with k = floor(log2(count)) (at most 32 and 31 + shift)."""
    multiplier, shift = (int(v) for v in quantize_multiplier(np.float64(input_scale) / np.float64(output_scale)))
    bits = min(count.bit_length() - 1, 32, 31 + shift)
    return (multiplier << bits) // count, shift - bits


def _check_types(graph: Graph, path: Path) -> None:
    """Refuse float models and non-int8 activations with the tensor (and operator) that has them."""
    for index in (*graph.inputs, *graph.outputs):
        tensor = graph.tensors[index]
        if tensor.dtype.startswith("float"):
            raise UnsupportedOpError(
                f"{path.name} has a {tensor.dtype} input or output ({tensor.name!r}); edgeprune compiles int8 .tflite "
                "models with int8 inputs and outputs, or float ones that only a QUANTIZE reads or a DEQUANTIZE writes "
                "(the converter's full integer quantization)")
    for op in graph.operators:
        for index in (*op.inputs, *op.outputs):
            tensor = graph.tensors[index] if index >= 0 else None
            if tensor is None or tensor.data is not None:
                continue
            if tensor.dtype != "int8":
                raise UnsupportedOpError(
                    f"{tensor.dtype} activations are not supported: tensor {tensor.name!r} of operator #{op.index} "
                    f"{op.name}; edgeprune compiles models with int8 activations")


def _check_ops(graph: Graph) -> None:
    for op in graph.operators:
        if op.name in EDGE_OPS:
            raise UnsupportedOpError(f"operator #{op.index} {op.name} inside the model is not supported; it is taken "
                                     "off only where it writes a float model output from int8")
        if SUPPORTED_OPS.get(op.name, 0) < op.version:
            known = "" if op.name not in SUPPORTED_OPS else f" (versions 1-{SUPPORTED_OPS[op.name]} are)"
            raise UnsupportedOpError(f"operator #{op.index} {op.name} version {op.version} is not supported{known}; "
                                     f"supported operators: {_supported_text()}")


class _Importer:
    """Builds `main` operator by operator; `values` holds each int8 tensor (4-D ones as NCHW)."""

    def __init__(self, graph: Graph, builder: relax.BlockBuilder, rounding: str = "double"):
        self.graph, self.builder, self.rounding = graph, builder, rounding
        self.values: dict[int, relax.Expr] = {}
        self.label: int | None = None  # the operator being converted: its values are named after it (`sources`)

    # ---- tensors and layouts ----
    def tensor(self, index: int) -> Tensor:
        return self.graph.tensors[index]

    def emit(self, expr: relax.Expr) -> relax.Expr:
        return self.builder.emit(expr, name_hint=sources.var_name(self.label) if self.label is not None else "")

    def store(self, index: int, expr: relax.Expr) -> None:
        """Keep `expr`, given in TFLite's layout, as tensor `index` (a 4-D tensor becomes NCHW)."""
        self.values[index] = self.emit(R.permute_dims(expr, _TO_NCHW)) if len(self.tensor(index).shape) == 4 else expr

    def tflite_layout(self, index: int) -> relax.Expr:
        value = self.values[index]
        return self.emit(R.permute_dims(value, _TO_NHWC)) if len(self.tensor(index).shape) == 4 else value

    def dequantize(self, index: int, value: relax.Expr | None = None) -> relax.Expr:
        t = self.tensor(index)
        value = self.values[index] if value is None else value
        return self.emit(R.dequantize(value, relax.const(t.scale.reshape(-1)[0], "float32"),
                                      relax.const(int(t.zero_point.reshape(-1)[0]), "int8")))

    def quantize(self, expr: relax.Expr, like: Tensor) -> relax.Expr:
        return self.emit(R.quantize(expr, relax.const(like.scale.reshape(-1)[0], "float32"),
                                    relax.const(int(like.zero_point.reshape(-1)[0]), "int8")))

    @staticmethod
    def bounds(op: Operator) -> tuple[float, float | None] | None:
        """The fused activation's (low, high) in real values; None for NONE."""
        code = 0 if op.options is None else op.options.FusedActivationFunction()
        if code not in _ACTIVATIONS:
            raise UnsupportedOpError(f"operator #{op.index} {op.name}: fused activation {code} is not supported "
                                     "(NONE, RELU, RELU6 and RELU_N1_TO_1 are)")
        return _ACTIVATIONS[code]

    def activation(self, expr: relax.Expr, op: Operator) -> relax.Expr:
        bounds = self.bounds(op)
        if bounds is None:
            return expr
        if bounds[1] is None:
            return self.emit(R.nn.relu(expr))
        return self.emit(R.clip(expr, bounds[0], bounds[1]))

    def int8_clamp(self, expr: relax.Expr, op: Operator, out: Tensor) -> relax.Expr:
        """The fused activation of an op that does not rescale (a pool): a clamp of its int8 result."""
        bounds = self.bounds(op)
        if bounds is None:
            return expr
        scale, zero = float(out.scale[0]), int(out.zero_point[0])
        low = max(INT8_MIN, zero + int(np.round(bounds[0] / scale)))
        high = INT8_MAX if bounds[1] is None else min(INT8_MAX, zero + int(np.round(bounds[1] / scale)))
        return self.emit(R.clip(expr, low, high))

    def weight(self, data: np.ndarray, t: Tensor) -> relax.Expr:
        """dequantize(int8 weights) with per-output-channel (axis 0) or per-tensor scales."""
        if np.any(t.zero_point != 0):
            raise UnsupportedOpError(f"weights {t.name!r} have a non-zero zero point; "
                                     "TFLite int8 weights are symmetric")
        return self.emit(R.dequantize(relax.const(data.astype(np.int8)), relax.const(t.scale.astype(np.float32)),
                                      relax.const(np.zeros(t.scale.size, np.int8)), axis=0))

    def bias(self, index: int, x: Tensor, w: Tensor, channels: int) -> relax.Expr | None:
        if index < 0:
            return None
        b = self.tensor(index)
        if b.dtype != "int32" or b.data is None:
            raise UnsupportedOpError(f"bias {b.name!r} must be a constant int32 tensor, not {b.dtype}")
        scale = (np.float64(x.scale[0]) * np.broadcast_to(w.scale.astype(np.float64), (channels,))).astype(np.float32)
        return self.emit(R.dequantize(relax.const(b.data.reshape(-1)), relax.const(scale),
                                      relax.const(np.zeros(channels, np.int32)), axis=0))

    # ---- operators ----
    def conv(self, op: Operator, depthwise: bool) -> None:
        o = op.options
        x, w, y = self.tensor(op.inputs[0]), self.tensor(op.inputs[1]), self.tensor(op.outputs[0])
        # OIHW: a conv's OHWI weights, a depthwise conv's 1HW(C x multiplier)
        kernel = w.data.transpose(3, 0, 1, 2) if depthwise else w.data.transpose(0, 3, 1, 2)
        channels, kernel_h, kernel_w = kernel.shape[0], kernel.shape[2], kernel.shape[3]
        groups = x.shape[3] if depthwise else x.shape[3] // w.shape[3]
        dilation = (o.DilationHFactor(), o.DilationWFactor())
        padding = _padding(o, x, kernel_h, kernel_w, dilation)
        out = self.emit(R.nn.conv2d(self.dequantize(op.inputs[0]), self.weight(kernel, w),
                                    strides=(o.StrideH(), o.StrideW()), padding=padding, dilation=dilation,
                                    groups=groups))
        bias = self.bias(op.inputs[2] if len(op.inputs) > 2 else -1, x, w, channels)
        if bias is not None:
            out = self.emit(R.add(out, self.emit(R.reshape(bias, (1, channels, 1, 1)))))
        self.values[op.outputs[0]] = self.quantize(self.activation(out, op), y)

    def fully_connected(self, op: Operator) -> None:
        x, w, y = self.tensor(op.inputs[0]), self.tensor(op.inputs[1]), self.tensor(op.outputs[0])
        if w.data is None or w.dtype != "int8":
            raise UnsupportedOpError(f"operator #{op.index} FULLY_CONNECTED needs constant int8 weights")
        outputs, depth = w.shape
        value = self.tflite_layout(op.inputs[0])
        rows = int(np.prod(x.shape)) // depth
        if x.shape != (rows, depth):
            value = self.emit(R.reshape(value, (rows, depth)))
        weight = self.emit(R.permute_dims(self.weight(w.data, w)))
        out = self.emit(R.matmul(self.dequantize(op.inputs[0], value), weight))
        bias = self.bias(op.inputs[2] if len(op.inputs) > 2 else -1, x, w, outputs)
        if bias is not None:
            out = self.emit(R.add(out, bias))
        out = self.quantize(self.activation(out, op), y)
        self.store(op.outputs[0], out if y.shape == (rows, outputs) else self.emit(R.reshape(out, y.shape)))

    def average_pool(self, op: Operator) -> None:
        o = op.options
        x, y = self.tensor(op.inputs[0]), self.tensor(op.outputs[0])
        # SAME padding: TFLM averages the window's elements inside the input only.
        window = (o.FilterHeight(), o.FilterWidth())
        pooled = self.emit(R.nn.avg_pool2d(self.dequantize(op.inputs[0]), window, (o.StrideH(), o.StrideW()),
                                           _padding(o, x, *window), count_include_pad=False))
        # TFLM averages the raw int8 values: the output keeps the input's quantization.
        self.values[op.outputs[0]] = self.int8_clamp(self.quantize(pooled, x), op, y)

    def max_pool(self, op: Operator) -> None:
        o = op.options
        x, y = self.tensor(op.inputs[0]), self.tensor(op.outputs[0])
        window = (o.FilterHeight(), o.FilterWidth())
        pooled = self.emit(R.nn.max_pool2d(self.dequantize(op.inputs[0]), window, (o.StrideH(), o.StrideW()),
                                           _padding(o, x, *window)))
        # TFLM takes the largest raw int8 value (padding never wins): the input's quantization again.
        self.values[op.outputs[0]] = self.int8_clamp(self.quantize(pooled, x), op, y)

    def operand(self, op: Operator, index: int, rank: int) -> relax.Expr:
        """Input `index` of an elementwise op (an activation or constant int8 data), its shape
        padded with leading ones to the output's `rank` as TFLite broadcasts, then held as NCHW if 4-D."""
        t = self.tensor(index)
        if t.dtype != "int8" or t.scale.size != 1:
            raise UnsupportedOpError(f"operator #{op.index} {op.name}: operand {t.name!r} must be int8 quantized per "
                                     "tensor")
        shape = (1,) * (rank - len(t.shape)) + t.shape
        if t.data is not None:
            data = t.data.reshape(shape)
            return relax.const(data.transpose(_TO_NCHW) if rank == 4 else data)
        if len(t.shape) == rank:
            return self.values[index]
        value = self.emit(R.reshape(self.tflite_layout(index), shape))
        return self.emit(R.permute_dims(value, _TO_NCHW)) if rank == 4 else value

    def elementwise(self, op: Operator, compute) -> None:
        """ADD, SUB or MUL of two int8 tensors with broadcasting: TFLM's arithmetic for each
        (int8.py lowers it: ADD and SUB rescale both inputs with 20 bits of headroom, MUL rescales
        the product once)."""
        y = self.tensor(op.outputs[0])
        a, b = (self.dequantize(i, self.operand(op, i, len(y.shape))) for i in op.inputs)
        self.values[op.outputs[0]] = self.quantize(self.activation(self.emit(compute(a, b)), op), y)

    def concatenation(self, op: Operator) -> None:
        """Inputs joined along TFLite's (NHWC) axis. TFLM copies the raw int8 values (its converter
        gives inputs and output one quantization), and so does this."""
        y = self.tensor(op.outputs[0])
        if op.options.FusedActivationFunction() != 0:
            raise UnsupportedOpError(f"operator #{op.index} CONCATENATION with a fused activation is not supported")
        axis = op.options.Axis() % len(y.shape)
        if len(y.shape) == 4:
            axis = _NHWC_AXIS_IN_NCHW[axis]
        self.values[op.outputs[0]] = self.emit(R.concat([self.values[i] for i in op.inputs], axis=axis))

    def constant(self, op: Operator, position: int, what: str) -> np.ndarray:
        """The data of the operator's input at `position`, which must be a constant."""
        data = self.tensor(op.inputs[position]).data
        if data is None:
            raise UnsupportedOpError(f"operator #{op.index} {op.name} needs constant {what}")
        return data

    def pad(self, op: Operator) -> None:
        """The raw int8 values padded as TFLM's PAD and PADV2 do: with the output's zero point, or
        PADV2's constant value (its raw int8)."""
        x = self.tensor(op.inputs[0])
        widths = self.constant(op, 1, "paddings").reshape(len(x.shape), 2).astype(int)
        if len(x.shape) == 4:
            widths = widths[_TO_NCHW]
        value = (int(self.constant(op, 2, "constant values").reshape(-1)[0]) if len(op.inputs) > 2
                 else int(self.tensor(op.outputs[0]).zero_point[0]))
        self.values[op.outputs[0]] = self.emit(R.nn.pad(self.values[op.inputs[0]], widths.reshape(-1).tolist(),
                                                        pad_value=value))

    def strided_slice(self, op: Operator) -> None:
        """TFLM's STRIDED_SLICE (strides of either sign, begin/end masks, shrunk axes): a raw int8 copy."""
        x, y, o = self.tensor(op.inputs[0]), self.tensor(op.outputs[0]), op.options
        begin, end, strides = (self.constant(op, i, what).reshape(-1).tolist()
                               for i, what in ((1, "begin"), (2, "end"), (3, "strides")))
        shrunk_reversed = any(o.ShrinkAxisMask() >> a & 1 and stride < 0 for a, stride in enumerate(strides))
        if o.EllipsisMask() or o.NewAxisMask() or getattr(o, "Offset", lambda: False)() or 0 in strides \
                or shrunk_reversed:
            raise UnsupportedOpError(f"operator #{op.index} STRIDED_SLICE: nonzero strides (positive on shrunk axes) "
                                     "without ellipsis, new axes or offset are supported")
        starts, stops = [], []
        for axis, size in enumerate(x.shape):
            start, stop = _slice_bounds(size, strides[axis], None if o.BeginMask() >> axis & 1 else begin[axis],
                                        None if o.EndMask() >> axis & 1 else end[axis])
            if o.ShrinkAxisMask() >> axis & 1:
                start = begin[axis] + size if begin[axis] < 0 else begin[axis]
                stop = start + 1
            # Relax reads a negative index from the end: "before the first element" is -(size + 1)
            starts.append(start if start >= 0 else -(size + 1))
            stops.append(stop if stop >= 0 else -(size + 1))
        axes = [_NHWC_AXIS_IN_NCHW[a] for a in range(4)] if len(x.shape) == 4 else list(range(len(x.shape)))
        out = self.emit(R.strided_slice(self.values[op.inputs[0]], axes, starts, stops, strides))
        if len(y.shape) == len(x.shape):
            self.values[op.outputs[0]] = out
        else:  # shrunk axes: the sliced tensor in TFLite's layout, reshaped
            out = self.emit(R.permute_dims(out, _TO_NHWC)) if len(x.shape) == 4 else out
            self.store(op.outputs[0], self.emit(R.reshape(out, y.shape)))

    def mean(self, op: Operator) -> None:
        """TFLM's int8 MEAN: the sum less the zero points, rescaled by input/output scale over the
        count as TFLM folds the count into its Q31 multiplier. 4-D inputs are reduced as NCHW where
        the kept axes keep their order (a global average pool), else in TFLite's layout."""
        x, y = self.tensor(op.inputs[0]), self.tensor(op.outputs[0])
        rank = len(x.shape)
        axes = sorted({int(a) % rank for a in self.constant(op, 1, "axes").reshape(-1)})
        keep = bool(op.options.KeepDims()) if op.options is not None else False
        count = int(np.prod([x.shape[a] for a in axes]))
        multiplier, shift = _mean_multiplier(float(x.scale[0]), float(y.scale[0]), count)
        compute = functools.partial(int8_kernels.mean, keepdims=keep, offset=count * int(x.zero_point[0]), left_shift=0,
                                    multiplier=multiplier, shift=shift,
                                    requantize=Requantize(int(y.zero_point[0]), INT8_MIN, INT8_MAX,
                                                          rounding=self.rounding))
        kept = [_NHWC_AXIS_IN_NCHW[a] for a in range(rank) if a not in axes] if rank == 4 else []
        if rank == 4 and (keep or kept == sorted(kept)):
            self.values[op.outputs[0]] = self.emit(self.builder.call_te(
                compute, self.values[op.inputs[0]], axes=[_NHWC_AXIS_IN_NCHW[a] for a in axes],
                primfunc_name_hint="mean_int8"))
            return
        self.store(op.outputs[0], self.emit(self.builder.call_te(compute, self.tflite_layout(op.inputs[0]), axes=axes,
                                                                 primfunc_name_hint="mean_int8")))

    def requantize(self, op: Operator) -> None:
        """QUANTIZE from int8 to int8: TFLM's Requantize, x - zero point times input/output scale as Q31."""
        x, y = self.tensor(op.inputs[0]), self.tensor(op.outputs[0])
        multiplier, shift = (int(v) for v in quantize_multiplier(np.float64(x.scale[0]) / np.float64(y.scale[0])))
        compute = functools.partial(int8_kernels.requantize, input_zero_point=int(x.zero_point[0]),
                                    multiplier=multiplier, shift=shift,
                                    requantize=Requantize(int(y.zero_point[0]), INT8_MIN, INT8_MAX,
                                                          rounding=self.rounding))
        self.values[op.outputs[0]] = self.emit(self.builder.call_te(compute, self.values[op.inputs[0]],
                                                                    primfunc_name_hint="requantize_int8"))

    def reshape(self, op: Operator) -> None:
        """RESHAPE or SQUEEZE: TFLite's (NHWC) element order into the output's declared shape."""
        shape = self.tensor(op.outputs[0]).shape
        self.store(op.outputs[0], self.emit(R.reshape(self.tflite_layout(op.inputs[0]), shape)))

    @staticmethod
    def check_output(op: Operator, y: Tensor, scale: float = 1 / 256, zero_point: int = INT8_MIN) -> None:
        """TFLM's fixed output quantization of SOFTMAX, LOGISTIC (1/256, -128) and TANH (1/128, 0)."""
        if not (np.isclose(y.scale[0], scale) and y.zero_point[0] == zero_point):
            raise UnsupportedOpError(f"operator #{op.index} {op.name}: an int8 output needs scale 1/{round(1 / scale)} "
                                     f"and zero point {zero_point} (TFLM's), not {y.scale[0]:g} and {y.zero_point[0]}")

    def lookup(self, op: Operator, table: np.ndarray) -> None:
        """Each int8 value replaced by its entry in a 256-entry table of TFLM's results."""
        self.values[op.outputs[0]] = self.emit(self.builder.call_te(
            int8_logistic.lookup, self.values[op.inputs[0]], relax.const(table),
            primfunc_name_hint=f"{op.name.lower()}_int8"))

    def logistic(self, op: Operator) -> None:
        x = self.tensor(op.inputs[0])
        self.check_output(op, self.tensor(op.outputs[0]))
        self.lookup(op, int8_logistic.logistic_table(float(x.scale[0]), int(x.zero_point[0])))

    def tanh(self, op: Operator) -> None:
        x = self.tensor(op.inputs[0])
        self.check_output(op, self.tensor(op.outputs[0]), 1 / 128, 0)
        self.lookup(op, int8_logistic.tanh_table(float(x.scale[0]), int(x.zero_point[0])))

    def hard_swish(self, op: Operator) -> None:
        x, y = self.tensor(op.inputs[0]), self.tensor(op.outputs[0])
        (_, exponent), _ = int8_hard_swish.multipliers(float(x.scale[0]), float(y.scale[0]))
        if not -15 <= exponent <= 0:
            raise UnsupportedOpError(f"operator #{op.index} HARD_SWISH: input scale / (128 x output scale) must be "
                                     f"within [2**-16, 1) (its exponent is {exponent})")
        self.lookup(op, int8_hard_swish.hard_swish_table(float(x.scale[0]), int(x.zero_point[0]), float(y.scale[0]),
                                                         int(y.zero_point[0])))

    def softmax(self, op: Operator) -> None:
        x, y = self.tensor(op.inputs[0]), self.tensor(op.outputs[0])
        self.check_output(op, y)
        if self.rounding != "double":
            raise UnsupportedOpError(f"operator #{op.index} SOFTMAX: --rounding {self.rounding} is not supported (its "
                                     "fixed-point exp is TFLM's default build's); compile with --rounding double")
        depth = x.shape[-1]
        if depth >= 512:
            raise UnsupportedOpError(f"operator #{op.index} SOFTMAX of shape {x.shape}: rows of fewer than 512 "
                                     "elements are supported")
        table = int8_softmax.exp_table(*int8_softmax.softmax_parameters(float(op.options.Beta()), float(x.scale[0])))
        rows = self.emit(R.reshape(self.tflite_layout(op.inputs[0]), (int(np.prod(x.shape)) // depth, depth)))
        out = self.emit(self.builder.call_te(int8_softmax.softmax, rows, relax.const(table),
                                             primfunc_name_hint="softmax_int8", primfunc_attrs={"op_pattern": OPAQUE}))
        out = self.emit(R.reshape(out, y.shape))
        self.store(op.outputs[0], out)

    def convert(self, op: Operator) -> None:
        elementwise = {"ADD": R.add, "MUL": R.multiply, "SUB": R.subtract}
        if op.name in elementwise:
            return self.elementwise(op, elementwise[op.name])
        handlers = {"AVERAGE_POOL_2D": self.average_pool, "CONCATENATION": self.concatenation,
                    "CONV_2D": functools.partial(self.conv, depthwise=False),
                    "DEPTHWISE_CONV_2D": functools.partial(self.conv, depthwise=True),
                    "FULLY_CONNECTED": self.fully_connected, "HARD_SWISH": self.hard_swish, "LOGISTIC": self.logistic,
                    "MAX_POOL_2D": self.max_pool, "MEAN": self.mean, "PAD": self.pad, "PADV2": self.pad,
                    "QUANTIZE": self.requantize, "RESHAPE": self.reshape, "SOFTMAX": self.softmax,
                    "SQUEEZE": self.reshape, "STRIDED_SLICE": self.strided_slice, "TANH": self.tanh}
        handlers[op.name](op)


def _slice_bounds(size: int, stride: int, begin: int | None, end: int | None) -> tuple[int, int]:
    """TFLite's start and stop of one sliced axis (None: masked), as its strided-slice logic clamps
    them: to [0, size] for a positive stride, to [-1, size - 1] for a negative one."""
    low, high = (0, size) if stride > 0 else (-1, size - 1)
    start = (low if stride > 0 else high) if begin is None else begin + size if begin < 0 else begin
    stop = (high if stride > 0 else low) if end is None else end + size if end < 0 else end
    return min(max(start, low), high), min(max(stop, low), high)


def _edge(t: Tensor, declared: bool = False) -> EdgeQuantization:
    """The int8 edge tensor `t`'s quantization; `declared`: the file declares a float32 tensor
    around it (QUANTIZE in, DEQUANTIZE out), which the C API then takes or returns."""
    if t.dtype != "int8" or t.scale.size != 1:
        raise UnsupportedOpError(f"model input/output {t.name!r} must be a per-tensor quantized int8 tensor, "
                                 f"not {t.dtype}")
    return EdgeQuantization(t.name, float(t.scale[0]), int(t.zero_point[0]), rounding="half_away",
                            api_dtype="float32" if declared else "int8")


def _float_edge(graph: Graph, index: int, op_name: str, side: str) -> Operator | None:
    """The QUANTIZE that alone reads the float input `index` into int8 (side "in"), or the
    DEQUANTIZE that writes the float output `index` from int8 ("out"); None if there is none."""
    if not graph.tensors[index].dtype.startswith("float"):
        return None
    ops = [op for op in graph.operators if index in (op.inputs if side == "in" else op.outputs)]
    if len(ops) != 1 or ops[0].name != op_name:
        return None
    int8 = graph.tensors[ops[0].outputs[0] if side == "in" else ops[0].inputs[0]]
    return ops[0] if int8.dtype == "int8" else None


def _strip_float_edges(graph: Graph) -> tuple[list[str], tuple[set[int], set[int]]]:
    """A model with float inputs and outputs around an int8 body (QUANTIZE first, DEQUANTIZE last,
    as the converter writes it without inference_input_type=int8): those operators come off the
    integer graph, and the compiled model's C API quantizes and dequantizes as TFLM does, taking
    and returning the float tensors the file declares. Returns a note for each edge and the
    positions of the float inputs and outputs."""
    notes, removed, floats = [], set(), (set(), set())
    inputs, outputs = list(graph.inputs), list(graph.outputs)
    for edges, op_name, side, positions in ((inputs, "QUANTIZE", "in", floats[0]),
                                            (outputs, "DEQUANTIZE", "out", floats[1])):
        for position, index in enumerate(edges):
            op = _float_edge(graph, index, op_name, side)
            if op is None:
                continue
            removed.add(op.index)
            positions.add(position)
            edges[position] = op.outputs[0] if side == "in" else op.inputs[0]
            kind = "input" if side == "in" else "output"
            notes.append(f"float {kind} {graph.tensors[index].name!r}: the C API {'takes' if side == 'in' else 'returns'}"
                         f" it as float32, as the file declares; its {op_name} (operator #{op.index}) runs in "
                         f"edgeprune_invoke() as TFLM computes it")
    graph.inputs, graph.outputs = tuple(inputs), tuple(outputs)
    graph.operators = [op for op in graph.operators if op.index not in removed]
    return notes, floats


def _read(path: Path) -> tuple[Graph, list[str], list[EdgeQuantization], list[EdgeQuantization]]:
    graph = read_tflite(path)
    notes, (float_in, float_out) = _strip_float_edges(graph)
    _check_types(graph, path)
    _check_ops(graph)
    return (graph, notes, [_edge(graph.tensors[i], n in float_in) for n, i in enumerate(graph.inputs)],
            [_edge(graph.tensors[i], n in float_out) for n, i in enumerate(graph.outputs)])


def model_edges(path: str | Path) -> tuple[list[EdgeQuantization], list[EdgeQuantization]]:
    """The int8 inputs and outputs of a `.tflite`'s integer graph (inside any float edges)."""
    _, _, inputs, outputs = _read(Path(path))
    return inputs, outputs


def import_tflite(path: str | Path, rounding: str = "double") -> tuple[tvm.IRModule, list[EdgeQuantization],
                                                                      list[EdgeQuantization], list[str]]:
    """The IRModule of an int8 `.tflite` file in QDQ form, with its input and output quantization
    and notes on what the import changed (float edges taken off). The kernels emitted here (MEAN,
    QUANTIZE) requantize with TFLM's `rounding`, as LowerQDQToInteger does the others."""
    path = Path(path)
    graph, notes, inputs, outputs = _read(path)
    builder = relax.BlockBuilder()
    importer = _Importer(graph, builder, rounding)
    params = [relax.Var(f"input_{n}", relax.TensorType(list(graph.tensors[i].shape), "int8"))
              for n, i in enumerate(graph.inputs)]
    with builder.function("main", params):
        with builder.dataflow():
            for index, param in zip(graph.inputs, params):
                importer.store(index, param)
            for importer.label, op in enumerate(graph.operators):
                importer.convert(op)
            importer.label = None
            results = [builder.emit_output(importer.tflite_layout(i)) for i in graph.outputs]
        builder.emit_func_output(results[0] if len(results) == 1 else relax.Tuple(results))
    labels = [f"#{op.index} {op.name}" for op in graph.operators]
    return sources.with_labels(builder.get(), labels), inputs, outputs, notes


def is_tflite(model) -> bool:
    return isinstance(model, (str, Path)) and Path(model).suffix == ".tflite"

