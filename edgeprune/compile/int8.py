"""Integer-only int8: the Relax rewrite of onnxruntime's QDQ graphs into int8 kernels.

Each pattern is a `quantize(op(dequantize(x), ...))` region found with TVM's dataflow pattern
language and rewritten to one int8 kernel (`int8_kernels.py`, added to the module as a PrimFunc):
int8 x int8 -> int32 accumulation, a per-channel int32 constant (bias minus the input zero point
times the weight sums) and TFLM's Q31 requantize with the activation clamp. Ops that keep the
quantization (reshape, max pool, ReLU at the same scale) stay Relax ops on int8. A region of
elementwise activations becomes a 256-entry table lookup (`int8_table.py`). What no pattern
covers is left in float, and `CheckIntegerOnly` then names it."""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, replace

import numpy as np
import tvm
from tvm import relax
from tvm.relax import op as R
from tvm.relax.dpl import is_const, is_op, rewrite_call, wildcard

from edgeprune.compile import int8_kernels, int8_table
from edgeprune.compile.dsp import conv as dsp_conv
from edgeprune.compile.dsp import dense as dsp_dense
from edgeprune.compile.dsp import gemm as dsp_gemm
from edgeprune.compile.dsp import depthwise as dsp_depthwise
from edgeprune.compile.dsp import packing
from edgeprune.compile.int8_kernels import RescaleInput, Requantize
from edgeprune.compile.requantize import ROUNDINGS, quantize_multiplier
from edgeprune.compile.schedule import SCHEDULED
from edgeprune.errors import EdgepruneError, UnsupportedOpError

INT8_MIN, INT8_MAX = -128, 127
ADD_LEFT_SHIFT = 20  # TFLM's headroom for int8 residual adds
OPAQUE = 8  # relax.transform.AnnotateTIROpPattern's kOpaque: FuseOps fuses nothing into the kernel


def _value(expr) -> np.ndarray:
    return expr.value.numpy()


def _scalar(expr) -> float:
    return float(_value(expr).reshape(-1)[0])


@dataclass
class _QDQ:
    """The wildcard and constant patterns of one `dequantize(data, scale, zero_point)`."""

    data: object
    scale: object
    zero_point: object

    @classmethod
    def of(cls, data=None) -> "_QDQ":
        return cls(data if data is not None else wildcard(), is_const(), is_const())

    def dequantize(self):
        return is_op("relax.dequantize")(self.data, self.scale, self.zero_point)

    def quantize_of(self, inner):
        return is_op("relax.quantize")(inner, self.scale, self.zero_point)


def _activation_bounds(expr, scale: float, zero_point: int) -> tuple[int, int]:
    """Clamp bounds of the output after an optional ReLU/ReLU6/clip between op and quantize."""
    low, high = INT8_MIN, INT8_MAX
    if isinstance(expr, relax.Call) and getattr(expr.op, "name", "") == "relax.nn.relu":
        low = max(low, zero_point)
    elif isinstance(expr, relax.Call) and getattr(expr.op, "name", "") == "relax.clip":
        a, b = (float(v.value) for v in expr.args[1:3])
        low = max(low, zero_point + int(np.round(a / scale)))
        high = min(high, zero_point + int(np.round(b / scale)))
    return low, high


def _with_activation(pattern):
    relu = is_op("relax.nn.relu")(pattern)
    clip = is_op("relax.clip")(pattern, wildcard(), wildcard())
    return relu | clip | pattern


@dataclass(frozen=True)
class Layer:
    """What a kernel computes, for people: its kind (pointwise, conv, depthwise, dense), a short
    description with its shape, its multiply-accumulates, and how its weights are stored (int16:
    widened at compile time; int8: widened in the loop) in how many bytes."""

    kind: str
    description: str
    macs: int
    weights: str
    weight_bytes: int

    def attrs(self) -> dict:
        return {f"edgeprune.layer.{field}": value for field, value in dataclasses.asdict(self).items()}

    @classmethod
    def of(cls, func) -> "Layer | None":
        """The layer a kernel's attributes name, if any."""
        if func.attrs is None or "edgeprune.layer.kind" not in func.attrs:
            return None
        value = {f.name: func.attrs[f"edgeprune.layer.{f.name}"] for f in dataclasses.fields(cls)}
        return cls(str(value["kind"]), str(value["description"]), int(value["macs"]), str(value["weights"]),
                   int(value["weight_bytes"]))


class _Rewrites:
    """Builds each pattern and its rewriter; `apply` runs them in turn. Kernels go into `builder`'s module.
    With `dsp`, convolutions and dense layers get the DSP-extension kernels (`dsp/`)."""

    def __init__(self, builder: relax.BlockBuilder, rounding: str, dsp: bool, weights: str):
        self.builder, self.rounding, self.dsp = builder, rounding, dsp
        self.conv_weights, self.dense_weights = ("int16", "int8") if weights == "auto" else (weights, weights)
        self.bindings: dict = {}
        self.x, self.w, self.b, self.y = _QDQ.of(), _QDQ.of(is_const()), _QDQ.of(is_const()), _QDQ.of()

    # ---- convolution: quantize(act(conv2d(dq(x), dq(w)) [+ reshape(dq(b))])) ----
    def conv_pattern(self):
        self.conv = is_op("relax.nn.conv2d")(self.x.dequantize(), self.w.dequantize())
        bias = is_op("relax.reshape")(self.b.dequantize(), wildcard())
        self.conv_biased = is_op("relax.add")(self.conv, bias)
        self.conv_act = _with_activation(self.conv_biased | self.conv)
        return self.y.quantize_of(self.conv_act)

    def conv_rewrite(self, _matched, m):
        attrs = m[self.conv].attrs
        weight = self._symmetric_weight(m, "conv2d")
        channels = weight.shape[0]
        bias, multiplier, shift = self._channel_constants(m, weight.reshape(channels, -1), self.conv_biased)
        x, groups = m[self.x.data], int(attrs.groups)
        depthwise = groups > 1 and groups == int(x.ty.shape[1]) and weight.shape[1] == 1
        if self.dsp and int(x.ty.shape[0]) == 1 and (groups == 1 or depthwise):
            return self._dsp_conv(m, x, weight, attrs, depthwise, (bias, multiplier, shift))
        return self._kernel(
            "conv2d_int8", int8_kernels.conv2d, m[self.x.data], relax.const(weight.astype(np.int8)), bias, multiplier, shift,
            strides=[int(s) for s in attrs.strides], padding=[int(p) for p in attrs.padding],
            dilation=[int(d) for d in attrs.dilation], groups=int(attrs.groups),
            input_zero_point=self._zero_point(m, self.x), requantize=self._output(m, self.conv_act))

    def _dsp_conv(self, m, x, weight: np.ndarray, attrs, depthwise: bool, constants) -> relax.Call:
        """A convolution on the DSP kernels: depthwise ones on channel planes, others as a GEMM."""
        _, cin, height, width = (int(d) for d in x.ty.shape)
        channels = weight.shape[0]
        shape = dsp_conv.ConvShape(cin, height, width, channels, tuple(weight.shape[2:]),
                                   *(tuple(int(v) for v in getattr(attrs, a)) for a in ("strides", "padding", "dilation")))
        output, zero_point = _shift_aware(self._output(m, self.conv_act), constants[2]), self._zero_point(m, self.x)
        out_shape = (1, channels, shape.out_height, shape.out_width)
        (kh, kw), stride, at = shape.kernel, shape.strides[0], f"@{shape.out_height}x{shape.out_width}"
        pixels = shape.out_height * shape.out_width
        if depthwise:
            kernel = dsp_depthwise.depthwise_conv2d(shape, channels // cin, output, zero_point)
            packed = dsp_depthwise.pack_weights(weight, shape)
            layer = Layer("depthwise", f"depthwise {kh}x{kw} s{stride} {channels} {at}", channels * pixels * kh * kw,
                          "int16", packed.nbytes)
            return self._prim_call("depthwise_conv2d_int8_dsp", kernel, [x, relax.const(packed), *constants],
                                   out_shape, layer)
        kernel = dsp_conv.conv2d(shape, output, zero_point, self.conv_weights)
        packed = packing.pack_rows(weight.reshape(channels, -1), self.conv_weights)
        groups = relax.const(np.array([dsp_gemm.loop_count(packing.padded_length(shape.depth))], np.int32))
        layer = Layer("pointwise" if (kh, kw) == (1, 1) else "conv", f"conv {kh}x{kw} s{stride} {cin}->{channels} {at}",
                      channels * pixels * shape.depth, self.conv_weights, packed.nbytes)
        return self._prim_call("conv2d_int8_dsp", kernel, [x, relax.const(packed), *constants, groups], out_shape,
                               layer)

    # ---- dense: quantize(act(matmul(dq(x), permute_dims(dq(w))) [+ dq(b)])) ----
    def dense_pattern(self):
        weight = is_op("relax.permute_dims")(self.w.dequantize())
        self.dense = is_op("relax.matmul")(self.x.dequantize(), weight)
        self.dense_biased = is_op("relax.add")(self.dense, self.b.dequantize())
        self.dense_act = _with_activation(self.dense_biased | self.dense)
        return self.y.quantize_of(self.dense_act)

    def dense_rewrite(self, _matched, m):
        weight = self._symmetric_weight(m, "dense")  # (N, K)
        bias, multiplier, shift = self._channel_constants(m, weight, self.dense_biased)
        if self.dsp:
            x, (outputs, depth) = m[self.x.data], weight.shape
            x_shape = tuple(int(d) for d in x.ty.shape)
            groups = relax.const(np.array([dsp_gemm.loop_count(packing.padded_length(depth))], np.int32))
            requantize = _shift_aware(self._output(m, self.dense_act), shift)
            packed = packing.pack_rows(weight, self.dense_weights)
            layer = Layer("dense", f"dense {depth}->{outputs}", int(np.prod(x_shape[:-1])) * depth * outputs,
                          self.dense_weights, packed.nbytes)
            return self._prim_call("dense_int8_dsp", dsp_dense.dense(x_shape, outputs, requantize, self.dense_weights),
                                   [x, relax.const(packed), bias, multiplier, shift, groups],
                                   (*x_shape[:-1], outputs), layer)
        return self._kernel(
            "dense_int8", int8_kernels.dense, m[self.x.data], relax.const(weight.astype(np.int8)), bias, multiplier, shift,
            requantize=self._output(m, self.dense_act))

    # ---- global average: quantize([reshape](mean(dq(x)))) ----
    def mean_pattern(self):
        self.mean = is_op("relax.mean")(self.x.dequantize())
        self.mean_reshaped = is_op("relax.reshape")(self.mean, wildcard())
        return self.y.quantize_of(self.mean_reshaped | self.mean)

    def mean_rewrite(self, _matched, m):
        attrs = m[self.mean].attrs
        axes = [int(a) for a in attrs.axis]
        shape = [int(d) for d in m[self.x.data].ty.shape]
        count = int(np.prod([shape[a] for a in axes]))
        left_shift, multiplier, shift = self._averaging(m, count)
        out = self._kernel(
            "mean_int8", int8_kernels.mean, m[self.x.data], axes=axes, keepdims=bool(attrs.keepdims),
            offset=count * self._zero_point(m, self.x), left_shift=left_shift, multiplier=multiplier, shift=shift,
            requantize=self._output(m, None))
        return R.reshape(out, m[self.mean_reshaped].args[1]) if self.mean_reshaped in m else out

    # ---- residual add: quantize(act(add(dq(a), dq(b)))) with TFLM's 20-bit headroom ----
    def add_pattern(self):
        self.a = _QDQ.of()
        self.add = is_op("relax.add")(self.a.dequantize(), self.x.dequantize())
        self.add_act = _with_activation(self.add)
        return self.y.quantize_of(self.add_act)

    def add_rewrite(self, matched, m):
        a, b = m[self.a.data], m[self.x.data]
        if [int(d) for d in a.ty.shape] != [int(d) for d in b.ty.shape]:
            return matched  # broadcasting adds stay in float; CheckIntegerOnly names them
        twice_max = 2 * max(_scalar(m[self.a.scale]), _scalar(m[self.x.scale]))
        inputs = tuple(RescaleInput(self._zero_point(m, q), *_q31(_scalar(m[q.scale]) / twice_max)) for q in (self.a, self.x))
        multiplier, shift = _q31(twice_max / ((1 << ADD_LEFT_SHIFT) * _scalar(m[self.y.scale])))
        return self._kernel(
            "add_int8", int8_kernels.add, a, b, inputs=inputs, left_shift=ADD_LEFT_SHIFT, output_multiplier=multiplier,
            output_shift=shift, requantize=self._output(m, self.add_act), fusible=False)

    # ---- average pool: quantize(avg_pool2d(dq(x))) (count_include_pad, or no padding) ----
    def avg_pool_pattern(self):
        self.avg_pool = is_op("relax.nn.avg_pool2d")(self.x.dequantize())
        return self.y.quantize_of(self.avg_pool)

    def avg_pool_rewrite(self, matched, m):
        attrs = m[self.avg_pool].attrs
        padding = [int(p) for p in attrs.padding]
        if attrs.ceil_mode or any(int(d) != 1 for d in attrs.dilation) or (any(padding) and not attrs.count_include_pad):
            return matched  # stays in float; CheckIntegerOnly names it
        pool = [int(k) for k in attrs.pool_size]
        left_shift, multiplier, shift = self._averaging(m, pool[0] * pool[1])
        return self._kernel(
            "avg_pool2d_int8", int8_kernels.avg_pool2d, m[self.x.data], pool=pool,
            strides=[int(s) for s in attrs.strides], padding=padding, input_zero_point=self._zero_point(m, self.x),
            left_shift=left_shift, multiplier=multiplier, shift=shift, requantize=self._output(m, None))

    # ---- concat: quantize(concat((dq(a), dq(b), ...))), each input rescaled to the output ----
    def concat_pattern(self):
        self.concat = is_op("relax.concat")(wildcard())
        return self.y.quantize_of(self.concat)

    def concat_rewrite(self, matched, m):
        sy, zy = _scalar(m[self.y.scale]), self._zero_point(m, self.y)
        fields = self._bound(m[self.concat].args[0])
        tensors, specs = [], []
        for field in getattr(fields, "fields", ()):
            dq = self._bound(field)
            if not (isinstance(dq, relax.Call) and getattr(dq.op, "name", "") == "relax.dequantize"
                    and all(isinstance(a, tvm.ir.Constant) for a in dq.args[1:3])):
                return matched
            scale, zero_point = _scalar(dq.args[1]), int(_scalar(dq.args[2]))
            tensors.append(dq.args[0])
            same = np.isclose(scale, sy, rtol=1e-6) and zero_point == zy
            specs.append(None if same else RescaleInput(zero_point, *_q31(scale / (sy * (1 << ADD_LEFT_SHIFT)))))
        if not tensors:
            return matched
        return self._kernel("concat_int8", int8_kernels.concat, *tensors, axis=int(m[self.concat].attrs.axis),
                            inputs=tuple(specs), left_shift=ADD_LEFT_SHIFT, requantize=self._output(m, None),
                            fusible=False)

    # ---- ops that keep the quantization: quantize(op(dq(x))) with the same scale/zero point ----
    def same_scale_pattern(self):
        self.same = (is_op("relax.reshape")(self.x.dequantize(), wildcard())
                     | is_op("relax.permute_dims")(self.x.dequantize())
                     | is_op("relax.nn.max_pool2d")(self.x.dequantize())
                     | is_op("relax.nn.relu")(self.x.dequantize())
                     | self._gather_pattern())
        return self.y.quantize_of(self.same)

    def _gather_pattern(self):
        """Ops that pick input elements (a max, a nearest-neighbour resize) or drop or add unit axes."""
        return (is_op("relax.max")(self.x.dequantize()) | is_op("relax.image.resize2d")(self.x.dequantize(), wildcard())
                | is_op("relax.squeeze")(self.x.dequantize()) | is_op("relax.expand_dims")(self.x.dequantize()))

    def same_scale_rewrite(self, matched, m):
        if not (np.isclose(_scalar(m[self.x.scale]), _scalar(m[self.y.scale]), rtol=1e-6)
                and _scalar(m[self.x.zero_point]) == _scalar(m[self.y.zero_point])):
            return matched
        op = m[self.same]
        name = op.op.name
        if name == "relax.image.resize2d" and op.attrs.method != "nearest_neighbor":
            return matched  # interpolation makes new values: stays in float; CheckIntegerOnly names it
        if name == "relax.nn.relu":
            return R.maximum(m[self.x.data], relax.const(self._zero_point(m, self.y), "int8"))
        return relax.Call(op.op, [m[self.x.data], *op.args[1:]], op.attrs)

    # ---- elementwise activations: quantize(f(dq(x))) as a table of f for each int8 value ----
    def table_pattern(self):
        return is_op("relax.quantize")(wildcard(), is_const(), is_const())

    def table_rewrite(self, matched, _m):
        found = int8_table.region_table(matched, self.bindings)
        if found is None:
            return matched  # not elementwise in one int8 tensor: stays in float; CheckIntegerOnly names it
        x, table = found
        return self._kernel("table_int8", int8_table.lookup, x, relax.const(table))

    # ---- quantize(dequantize(x)) with equal parameters is x ----
    def identity_pattern(self):
        return self.y.quantize_of(is_op("relax.dequantize")(self.x.data, self.y.scale, self.y.zero_point))

    def identity_rewrite(self, _matched, m):
        return m[self.x.data]

    def _kernel(self, name: str, compute, *tensors: relax.Expr, fusible: bool = True, **options) -> relax.Call:
        """A call_tir of `compute` (a TE kernel of int8_kernels) on `tensors`; the options are fixed
        when the PrimFunc is built. A kernel that is not `fusible` takes no producer into it: a
        residual add would otherwise inline each convolution's requantize three times per use."""
        attrs = {} if fusible else {"op_pattern": OPAQUE}
        return self.builder.call_te(functools.partial(compute, **options), *tensors, primfunc_name_hint=name,
                                    primfunc_attrs=attrs)

    def _prim_call(self, name: str, func, args: list, shape: tuple[int, ...], layer: "Layer") -> relax.Call:
        """A call_tir of a hand-written PrimFunc (no schedule pass touches it) giving int8 `shape`;
        the kernel carries what layer it computes (the manifest's steps show it)."""
        gv = self.builder.add_func(func.with_attrs({"op_pattern": OPAQUE, SCHEDULED: True, **layer.attrs()}), name)
        return relax.call_tir(gv, args, relax.TensorType(shape, "int8"))

    def _bound(self, expr):
        """What a dataflow variable is bound to (the expression itself otherwise)."""
        return self.bindings.get(expr, expr) if isinstance(expr, relax.Var) else expr

    def _averaging(self, m, count: int) -> tuple[int, int, int]:
        """(left shift, Q31 multiplier, shift) that turn a sum of `count` input differences into
        the output's int8 mean: input scale / (count x output scale), with headroom."""
        left_shift = _headroom(count)
        return (left_shift, *_q31(_scalar(m[self.x.scale]) / (count * _scalar(m[self.y.scale]) * (1 << left_shift))))

    @staticmethod
    def _zero_point(m, qdq: _QDQ) -> int:
        return int(_scalar(m[qdq.zero_point]))

    def _symmetric_weight(self, m, op: str) -> np.ndarray:
        if np.any(_value(m[self.w.zero_point]) != 0):
            raise UnsupportedOpError(f"int8 {op} needs symmetric weights (weight zero point 0)")
        return _value(m[self.w.data]).astype(np.int32)

    def _channel_constants(self, m, weight_rows: np.ndarray, biased) -> tuple[tvm.ir.Constant, ...]:
        """Per output channel: the int32 bias minus the input zero point times the weight sum, and
        the Q31 multiplier (int32) and shift (int8) of input scale x weight scale / output scale."""
        channels = weight_rows.shape[0]
        bias = (_value(m[self.b.data]).astype(np.int64).reshape(-1) if biased in m
                else np.zeros(channels, np.int64))
        bias = bias - self._zero_point(m, self.x) * weight_rows.sum(axis=1)
        real = (_scalar(m[self.x.scale]) * np.broadcast_to(_value(m[self.w.scale]).astype(np.float64).reshape(-1),
                                                           channels) / _scalar(m[self.y.scale]))
        multiplier, shift = quantize_multiplier(real)
        return (relax.const(bias.astype(np.int32)), relax.const(multiplier.astype(np.int32)),
                relax.const(shift.astype(np.int8)))

    def _output(self, m, activation) -> Requantize:
        """The output's zero point and its clamp: int8's range narrowed by a fused ReLU/ReLU6/clip."""
        sy, zy = _scalar(m[self.y.scale]), self._zero_point(m, self.y)
        low, high = (INT8_MIN, INT8_MAX) if activation is None else _activation_bounds(m[activation], sy, zy)
        return Requantize(zy, low, high, rounding=self.rounding)

    def apply(self, func: relax.Function) -> relax.Function:
        rules = [(self.conv_pattern(), self.conv_rewrite), (self.dense_pattern(), self.dense_rewrite),
                 (self.mean_pattern(), self.mean_rewrite), (self.add_pattern(), self.add_rewrite),
                 (self.avg_pool_pattern(), self.avg_pool_rewrite), (self.concat_pattern(), self.concat_rewrite),
                 (self.same_scale_pattern(), self.same_scale_rewrite),
                 (self.identity_pattern(), self.identity_rewrite), (self.table_pattern(), self.table_rewrite)]
        for pattern, rewriter in rules:
            self.bindings = relax.analysis.get_var2val(func)
            func = rewrite_call(pattern, rewriter, func)
        return func


def _shift_aware(requantize: Requantize, shift: tvm.ir.Constant) -> Requantize:
    """The requantize with its shorter rounding where every channel's shift is negative."""
    return replace(requantize, negative_shifts=bool(np.all(_value(shift) < 0)))


def _headroom(count: int) -> int:
    """The left shift (at most ADD_LEFT_SHIFT) that keeps a sum of `count` int8 differences below
    2**30: the requantize's first rounding then falls far below an output LSB."""
    return max(0, min(ADD_LEFT_SHIFT, 30 - (count * 255).bit_length()))


def _q31(real: float) -> tuple[int, int]:
    multiplier, shift = quantize_multiplier(np.array(real))
    return int(multiplier), int(shift)


def has_dsp(target) -> bool:
    """Whether a TVM target's core has the Armv7E-M DSP extension (LLVM's reading of its CPU)."""
    return target is not None and bool(target.attrs.get("feature.has_dsp", False))


def lower_qdq_to_integer(mod: tvm.IRModule, rounding: str = "double", target=None,
                         weights: str = "auto") -> tvm.IRModule:
    """Rewrite the QDQ regions of every Relax function into integer-only kernels, requantizing
    with TFLM's `rounding` ("double", its default, or "single"; see int8_kernels.Requantize).
    Without a `target` (a host build) every kernel is the portable TE one. On DSP cores,
    `weights` is how the DSP kernels store weights: "int16" (widened at compile time: fastest),
    "int8" (a byte per weight, widened in the loop), or "auto": int16 for convolutions, which use
    each weight at every pixel, int8 for dense layers, which read each weight once."""
    if rounding not in ROUNDINGS:
        raise EdgepruneError(f"unknown requantize rounding {rounding!r}; choose one of {', '.join(ROUNDINGS)}")
    builder = relax.BlockBuilder(mod)
    for gv, func in list(mod.functions.items()):
        if isinstance(func, relax.Function):
            builder.update_func(gv, _Rewrites(builder, rounding, has_dsp(target), weights).apply(func))
    return relax.transform.DeadCodeElimination()(builder.get())
