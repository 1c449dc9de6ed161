"""Integer-only int8: the Relax rewrite of onnxruntime's QDQ graphs into int8 kernels.

Each pattern is a `quantize(op(dequantize(x), ...))` region found with TVM's dataflow pattern
language and rewritten to integer ops: int8 x int8 -> int32 accumulation, a per-channel int32
constant (bias minus the input zero point times the weight sums), and TFLM's Q31 requantize
(`requantize.py`), whose elementwise integer ops fuse into the kernel. What no pattern covers is
left in float, and `CheckIntegerOnly` then names it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tvm
from tvm import relax
from tvm.relax import op as R
from tvm.relax.dpl import is_const, is_op, rewrite_call, wildcard

from edgeprune.compile.requantize import quantize_multiplier, requantize
from edgeprune.errors import UnsupportedOpError

INT8_MIN, INT8_MAX = -128, 127


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


class _Rewrites:
    """Builds each pattern and its rewriter; `apply` runs them until nothing changes."""

    def __init__(self):
        self.x, self.w, self.b, self.y = _QDQ.of(), _QDQ.of(is_const()), _QDQ.of(is_const()), _QDQ.of()

    # ---- convolution: quantize(act(conv2d(dq(x), dq(w)) [+ reshape(dq(b))])) ----
    def conv_pattern(self):
        self.conv = is_op("relax.nn.conv2d")(self.x.dequantize(), self.w.dequantize())
        bias = is_op("relax.reshape")(self.b.dequantize(), wildcard())
        self.conv_biased = is_op("relax.add")(self.conv, bias)
        self.conv_act = _with_activation(self.conv_biased | self.conv)
        return self.y.quantize_of(self.conv_act)

    def conv_rewrite(self, _matched, m):
        conv = m[self.conv]
        attrs = conv.attrs
        w = _value(m[self.w.data]).astype(np.int32)
        sx, zx = _scalar(m[self.x.scale]), int(_scalar(m[self.x.zero_point]))
        sw = _value(m[self.w.scale]).astype(np.float64).reshape(-1)
        if np.any(_value(m[self.w.zero_point]) != 0):
            raise UnsupportedOpError("int8 conv2d needs symmetric weights (weight zero point 0)")
        channels = w.shape[0]
        bias = (_value(m[self.b.data]).astype(np.int64).reshape(-1) if self.conv_biased in m
                else np.zeros(channels, np.int64))
        bias = bias - zx * w.reshape(channels, -1).sum(axis=1)
        pad = [int(p) for p in attrs.padding]  # top, left, bottom, right
        x = m[self.x.data]
        if any(pad):
            x = R.nn.pad(x, [0, 0, 0, 0, pad[0], pad[2], pad[1], pad[3]], pad_value=float(zx))
        acc = R.nn.conv2d(x, relax.const(w.astype(np.int8)), strides=attrs.strides, padding=[0, 0, 0, 0],
                          dilation=attrs.dilation, groups=attrs.groups, out_dtype="int32")
        acc = R.add(acc, relax.const(bias.astype(np.int32).reshape(1, channels, 1, 1)))
        sy = _scalar(m[self.y.scale])
        return self._requantize(m, acc, sx * np.broadcast_to(sw, channels) / sy, (1, channels, 1, 1), self.conv_act)

    # ---- dense: quantize(act(matmul(dq(x), permute_dims(dq(w))) [+ dq(b)])) ----
    def dense_pattern(self):
        weight = is_op("relax.permute_dims")(self.w.dequantize())
        self.dense = is_op("relax.matmul")(self.x.dequantize(), weight)
        self.dense_biased = is_op("relax.add")(self.dense, self.b.dequantize())
        self.dense_act = _with_activation(self.dense_biased | self.dense)
        return self.y.quantize_of(self.dense_act)

    def dense_rewrite(self, _matched, m):
        w = _value(m[self.w.data]).astype(np.int32)  # (N, K)
        sx, zx = _scalar(m[self.x.scale]), int(_scalar(m[self.x.zero_point]))
        sw = _value(m[self.w.scale]).astype(np.float64).reshape(-1)
        if np.any(_value(m[self.w.zero_point]) != 0):
            raise UnsupportedOpError("int8 dense needs symmetric weights (weight zero point 0)")
        n = w.shape[0]
        bias = _value(m[self.b.data]).astype(np.int64).reshape(-1) if self.dense_biased in m else np.zeros(n, np.int64)
        bias = bias - zx * w.sum(axis=1)
        acc = R.matmul(m[self.x.data], relax.const(np.ascontiguousarray(w.T).astype(np.int8)), out_dtype="int32")
        acc = R.add(acc, relax.const(bias.astype(np.int32)))
        sy = _scalar(m[self.y.scale])
        return self._requantize(m, acc, sx * np.broadcast_to(sw, n) / sy, (n,), self.dense_act)

    # ---- global average: quantize([reshape](mean(dq(x)))) ----
    def mean_pattern(self):
        self.mean = is_op("relax.mean")(self.x.dequantize())
        self.mean_reshaped = is_op("relax.reshape")(self.mean, wildcard())
        return self.y.quantize_of(self.mean_reshaped | self.mean)

    def mean_rewrite(self, _matched, m):
        mean = m[self.mean]
        axes = [int(a) for a in mean.attrs.axis]
        shape = [int(d) for d in m[self.x.data].ty.shape]
        count = int(np.prod([shape[a] for a in axes]))
        sx, zx = _scalar(m[self.x.scale]), int(_scalar(m[self.x.zero_point]))
        acc = R.sum(R.astype(m[self.x.data], "int32"), axis=axes, keepdims=bool(mean.attrs.keepdims))
        acc = R.subtract(acc, relax.const(count * zx, "int32"))
        out = self._requantize(m, acc, np.array(sx / (count * _scalar(m[self.y.scale]))), (), None)
        if self.mean_reshaped in m:
            out = R.reshape(out, m[self.mean_reshaped].args[1])
        return out

    # ---- residual add: quantize(act(add(dq(a), dq(b)))) with TFLM's 20-bit headroom ----
    def add_pattern(self):
        self.a = _QDQ.of()
        self.add = is_op("relax.add")(self.a.dequantize(), self.x.dequantize())
        self.add_act = _with_activation(self.add)
        return self.y.quantize_of(self.add_act)

    def add_rewrite(self, _matched, m):
        sa, za = _scalar(m[self.a.scale]), int(_scalar(m[self.a.zero_point]))
        sb, zb = _scalar(m[self.x.scale]), int(_scalar(m[self.x.zero_point]))
        sy = _scalar(m[self.y.scale])
        twice_max = 2 * max(sa, sb)
        left_shift = 20
        terms = []
        for data, scale, zero in ((m[self.a.data], sa, za), (m[self.x.data], sb, zb)):
            shifted = R.multiply(R.subtract(R.astype(data, "int32"), relax.const(zero, "int32")),
                                 relax.const(1 << left_shift, "int32"))
            mult, shift = quantize_multiplier(np.array(scale / twice_max))
            terms.append(requantize(shifted, mult, shift, 0, -(1 << 31), (1 << 31) - 1, (), "int32"))
        total = R.add(terms[0], terms[1])
        return self._requantize(m, total, np.array(twice_max / ((1 << left_shift) * sy)), (), self.add_act)

    # ---- ops that keep the quantization: quantize(op(dq(x))) with the same scale/zero point ----
    def same_scale_pattern(self):
        self.same = (is_op("relax.reshape")(self.x.dequantize(), wildcard())
                     | is_op("relax.permute_dims")(self.x.dequantize())
                     | is_op("relax.nn.max_pool2d")(self.x.dequantize())
                     | is_op("relax.nn.relu")(self.x.dequantize()))
        return self.y.quantize_of(self.same)

    def same_scale_rewrite(self, matched, m):
        if not (np.isclose(_scalar(m[self.x.scale]), _scalar(m[self.y.scale]), rtol=1e-6)
                and _scalar(m[self.x.zero_point]) == _scalar(m[self.y.zero_point])):
            return matched
        op = m[self.same]
        name = op.op.name
        if name == "relax.nn.relu":
            return R.maximum(m[self.x.data], relax.const(int(_scalar(m[self.y.zero_point])), "int8"))
        return relax.Call(op.op, [m[self.x.data], *op.args[1:]], op.attrs)

    # ---- quantize(dequantize(x)) with equal parameters is x ----
    def identity_pattern(self):
        return self.y.quantize_of(is_op("relax.dequantize")(self.x.data, self.y.scale, self.y.zero_point))

    def identity_rewrite(self, _matched, m):
        return m[self.x.data]

    def _requantize(self, m, acc, real_multiplier, channel_shape, activation):
        """acc (int32, in units of the real multiplier's numerator) to the output's int8."""
        sy, zy = _scalar(m[self.y.scale]), int(_scalar(m[self.y.zero_point]))
        multiplier, shift = quantize_multiplier(np.asarray(real_multiplier, np.float64))
        low, high = (INT8_MIN, INT8_MAX) if activation is None else _activation_bounds(m[activation], sy, zy)
        return requantize(acc, multiplier, shift, zy, low, high, channel_shape)

    def apply(self, func: relax.Function) -> relax.Function:
        rules = [(self.conv_pattern(), self.conv_rewrite), (self.dense_pattern(), self.dense_rewrite),
                 (self.mean_pattern(), self.mean_rewrite), (self.add_pattern(), self.add_rewrite),
                 (self.same_scale_pattern(), self.same_scale_rewrite),
                 (self.identity_pattern(), self.identity_rewrite)]
        for pattern, rewriter in rules:
            func = rewrite_call(pattern, rewriter, func)
        return func


def lower_qdq_to_integer(mod: tvm.IRModule) -> tvm.IRModule:
    """Rewrite the QDQ regions of every Relax function into integer-only ops."""
    updated = tvm.IRModule(dict(mod.functions), attrs=mod.attrs)
    for gv, func in mod.functions.items():
        if isinstance(func, relax.Function):
            updated[gv] = _Rewrites().apply(func)
    return relax.transform.DeadCodeElimination()(updated)
