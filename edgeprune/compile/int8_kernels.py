"""The int8 kernels as TE computes: each is one PrimFunc from its int8 inputs to its int8 output.

A kernel holds everything between two int8 tensors: the zero-point padding, the int32
accumulation, the bias and TFLM's requantize with the activation clamp. LeanSchedule then inlines
the padding into the reduction and computes the requantize at it, so a kernel needs no buffer of
its own. (Built as separate Relax ops, the zero-point `pad` would be a kernel of its own writing a
padded copy of the input to the arena: FuseOps never fuses a producer into a convolution.)

Sums that are rescaled (pools, adds, concats) are first shifted left for headroom, as TFLM's add
does, so the first of the requantize's two roundings falls far below an output LSB."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
from tvm import te, tirx, topi

from edgeprune.compile.requantize import quantize_multiplier

_ROUND_BIT = 1 << 30


@dataclass(frozen=True)
class Requantize:
    """acc -> clamp(zero_point + MultiplyByQuantizedMultiplier(acc, multiplier, shift), low, high).

    `rounding` picks TFLM's variant. "double" (TFLM's and CMSIS-NN's default) is the saturating
    rounding doubling high multiply and then a rounding divide by a power of two, in 32 bits as
    CMSIS-NN does it; "single" (TFLITE_SINGLE_ROUNDING, CMSIS_NN_USE_SINGLE_ROUNDING) rounds once,
    half up: (acc * multiplier + 2**(30 - shift)) >> (31 - shift). `multiplier` and `shift` are
    Python ints (one for the tensor) or TIR expressions (a load from a per-channel constant).
    `low`/`high` None means no clamp (an int32 intermediate)."""

    zero_point: int
    low: int | None
    high: int | None
    dtype: str = "int8"
    rounding: str = "double"
    negative_shifts: bool = False  # every shift < 0 (a multiplier below 1/2): a shorter double rounding

    def __call__(self, acc: tirx.PrimExpr, multiplier, shift) -> tirx.PrimExpr:
        multiplier, shift = (tirx.const(v, "int32") if isinstance(v, int) else _cast(v, "int32")
                             for v in (multiplier, shift))
        if self.rounding == "single":
            value = _single_rounding(acc, multiplier, shift)
        else:
            value = (_double_rounding_right if self.negative_shifts else _double_rounding)(acc, multiplier, shift)
        value = value + self.zero_point
        if self.low is not None:
            value = tirx.min(tirx.max(value, self.low), self.high)
        return _cast(value, self.dtype)

    def unclamped(self) -> "Requantize":
        """The same rounding into int32 with no zero point or clamp (an intermediate rescale)."""
        return replace(self, zero_point=0, low=None, high=None, dtype="int32")


def _double_rounding(acc: tirx.PrimExpr, multiplier: tirx.PrimExpr, shift: tirx.PrimExpr) -> tirx.PrimExpr:
    i32, i64 = "int32", "int64"
    zero, one = tirx.const(0, i32), tirx.const(1, i32)
    x = tirx.shift_left(acc, tirx.max(shift, zero))
    # Rounding doubling high multiply: TFLM's nudged, truncating division equals this shift.
    high = _cast(tirx.shift_right(_cast(x, i64) * _cast(multiplier, i64) + tirx.const(_ROUND_BIT, i64),
                                  tirx.const(31, i64)), i32)
    # Rounding divide by 2**right, half away from zero (gemmlowp's RoundingDivideByPOT).
    right = tirx.max(zero - shift, zero)
    mask = tirx.shift_left(one, right) - one
    threshold = tirx.shift_right(mask, one) + _cast(high < zero, i32)
    return tirx.shift_right(high, right) + _cast((high & mask) > threshold, i32)


def _double_rounding_right(acc: tirx.PrimExpr, multiplier: tirx.PrimExpr, shift: tirx.PrimExpr) -> tirx.PrimExpr:
    """`_double_rounding` for a negative shift: no left shift, and the rounding divide by 2**right
    (right >= 1), half away from zero, as (high + 2**(right - 1) - (high < 0)) >> right. That is
    the same integer whenever high + 2**(right - 1) fits in int32 (|high| <= |acc| here).
    high = (acc * multiplier + 2**30) >> 31 is computed as acc + ((acc * m + 2**31) >> 32) with
    m = 2 * multiplier - 2**32 (the doubled multiplier wrapped to int32; a negative shift means
    multiplier >= 2**30): the same integer, and one SMMLAR on cores with the DSP extension."""
    i32, i64 = "int32", "int64"
    doubled = _cast(_doubled_int32(multiplier), i64)
    high = acc + _cast(tirx.shift_right(_cast(acc, i64) * doubled + tirx.const(1 << 31, i64),
                                        tirx.const(32, i64)), i32)
    right = tirx.const(0, i32) - shift
    half = tirx.shift_left(tirx.const(1, i32), right - tirx.const(1, i32))
    return tirx.shift_right(high + half - _cast(high < tirx.const(0, i32), i32), right)


def _doubled_int32(multiplier: tirx.PrimExpr) -> tirx.PrimExpr:
    """2 * multiplier wrapped to int32; a literal is wrapped here (TVM folds no int32 overflow)."""
    if isinstance(multiplier, tirx.IntImm):
        return tirx.const((2 * multiplier.value + 2**31) % 2**32 - 2**31, "int32")
    return tirx.shift_left(multiplier, tirx.const(1, "int32"))


def _single_rounding(acc: tirx.PrimExpr, multiplier: tirx.PrimExpr, shift: tirx.PrimExpr) -> tirx.PrimExpr:
    i64 = "int64"
    total = _cast(tirx.const(31, "int32") - shift, i64)
    half = tirx.shift_left(tirx.const(1, i64), total - tirx.const(1, i64))
    return _cast(tirx.shift_right(_cast(acc, i64) * _cast(multiplier, i64) + half, total), "int32")


def _cast(value: tirx.PrimExpr, dtype: str) -> tirx.PrimExpr:
    """`value` as `dtype`, keeping its vector lanes (the NEON kernels requantize whole vectors)."""
    lanes = value.ty.dtype.lanes if hasattr(value, "ty") else 1  # a TE tensor element has no type yet
    return value.astype(dtype if lanes == 1 else f"{dtype}x{lanes}")


def _shape(tensor: te.Tensor) -> tuple[int, ...]:
    """A static shape as Python ints, so that the kernels' loops and indices are int32."""
    return tuple(int(d) for d in tensor.shape)


def _int32(value: tirx.PrimExpr) -> tirx.PrimExpr:
    return value.astype("int32")


def _shifted(value: tirx.PrimExpr, offset: int, left_shift: int) -> tirx.PrimExpr:
    """(value - offset) * 2**left_shift in int32: a zero-point-free sum with headroom."""
    return (_int32(value) - offset) * (1 << left_shift)


def _pad(x: te.Tensor, top: int, left: int, bottom: int, right: int, value: int) -> te.Tensor:
    """x padded spatially with `value`. Each bound is its own `likely` test (LoopPartition splits
    on single comparisons, not on conjunctions), so the interior runs without any of them."""
    batch, channels, height, width = _shape(x)
    fill = tirx.const(value, x.dtype)

    def element(n, c, y, w):
        inside = x[n, c, y - top, w - left]
        for bound in (w < width + left, w >= left, y < height + top, y >= top):
            inside = tirx.if_then_else(tirx.likely(bound), inside, fill)
        return inside

    return te.compute((batch, channels, height + top + bottom, width + left + right), element, name="pad")


def conv2d(x: te.Tensor, weight: te.Tensor, bias: te.Tensor, multiplier: te.Tensor, shift: te.Tensor, *,
           strides: Sequence[int], padding: Sequence[int], dilation: Sequence[int], groups: int,
           input_zero_point: int, requantize: Requantize) -> te.Tensor:
    """NCHW int8 convolution (regular, grouped, depthwise), padded with the input's zero point;
    per output channel an int32 bias and a Q31 multiplier and shift. padding: top, left, bottom, right."""
    batch, _, height, width = _shape(x)
    channels, group_channels, kernel_h, kernel_w = _shape(weight)
    top, left, bottom, right = padding
    padded = _pad(x, top, left, bottom, right, input_zero_point)
    out_h = (height + top + bottom - dilation[0] * (kernel_h - 1) - 1) // strides[0] + 1
    out_w = (width + left + right - dilation[1] * (kernel_w - 1) - 1) // strides[1] + 1
    per_group = channels // groups
    rc = te.reduce_axis((0, group_channels), "rc")
    ry, rx = te.reduce_axis((0, kernel_h), "ry"), te.reduce_axis((0, kernel_w), "rx")

    def in_channel(c):
        return rc if groups == 1 else c // per_group * group_channels + rc

    acc = te.compute(
        (batch, channels, out_h, out_w),
        lambda n, c, y, w: te.sum(
            _int32(padded[n, in_channel(c), y * strides[0] + ry * dilation[0], w * strides[1] + rx * dilation[1]])
            * _int32(weight[c, rc, ry, rx]), axis=[rc, ry, rx]),
        name="conv")
    return te.compute(acc.shape, lambda n, c, y, w: requantize(acc[n, c, y, w] + bias[c], multiplier[c], shift[c]),
                      name="requantize")


def dense(x: te.Tensor, weight: te.Tensor, bias: te.Tensor, multiplier: te.Tensor, shift: te.Tensor, *,
          requantize: Requantize) -> te.Tensor:
    """x (..., K) int8 times weight (N, K) int8, an int32 bias and a Q31 multiplier/shift per output."""
    outputs, depth = _shape(weight)
    k = te.reduce_axis((0, depth), "k")
    shape = (*_shape(x)[:-1], outputs)
    acc = te.compute(shape, lambda *i: te.sum(_int32(x[(*i[:-1], k)]) * _int32(weight[i[-1], k]), axis=k), name="dense")
    return te.compute(shape, lambda *i: requantize(acc[i] + bias[i[-1]], multiplier[i[-1]], shift[i[-1]]),
                      name="requantize")


def mean(x: te.Tensor, *, axes: Sequence[int], keepdims: bool, offset: int, left_shift: int, multiplier: int,
         shift: int, requantize: Requantize) -> te.Tensor:
    """The sum over `axes` minus `offset` (count times the zero point), shifted left by `left_shift`
    and requantized (the 1/count and 2**-left_shift are in the multiplier)."""
    shape = _shape(x)
    reduced = {axis: te.reduce_axis((0, shape[axis]), f"r{axis}") for axis in axes}
    kept = [axis for axis in range(len(shape)) if axis not in reduced]
    out_shape = [1 if axis in reduced else extent for axis, extent in enumerate(shape)] if keepdims \
        else [shape[axis] for axis in kept]

    def source_index(index):
        spatial = iter(index[axis] for axis in kept) if keepdims else iter(index)
        return tuple(reduced[axis] if axis in reduced else next(spatial) for axis in range(len(shape)))

    total = te.compute(out_shape, lambda *i: te.sum(_int32(x[source_index(i)]), axis=list(reduced.values())),
                       name="sum")
    return te.compute(out_shape, lambda *i: requantize(_shifted(total[i], offset, left_shift), multiplier, shift),
                      name="requantize")


def _is_plain_average(count: int, left_shift: int, multiplier: int, shift: int) -> bool:
    """Whether the rescale is 1 / (count x 2**left_shift) to Q31 rounding: the output keeps the input's scale."""
    plain_multiplier, plain_shift = quantize_multiplier(np.array(1.0 / (count * (1 << left_shift))))
    return int(plain_shift) == shift and abs(int(plain_multiplier) - multiplier) <= 1


def _rounded_average(total: tirx.PrimExpr, count, requantize: Requantize) -> tirx.PrimExpr:
    """TFLM's int8 average: the raw sum divided by the count (an int or an expression), rounded half
    away from zero, then clamped to the requantize's bounds (int8's range if it has none)."""
    count = tirx.const(count, "int32") if isinstance(count, int) else count
    half = tirx.floordiv(count, 2)
    average = tirx.Select(total > 0, tirx.truncdiv(total + half, count), tirx.truncdiv(total - half, count))
    low, high = (-128, 127) if requantize.low is None else (requantize.low, requantize.high)
    return tirx.min(tirx.max(average, low), high).astype(requantize.dtype)


def _window_sums(x: te.Tensor, pool: Sequence[int], strides: Sequence[int], padding: Sequence[int],
                 pad_value: int) -> te.Tensor:
    """The int32 sum of each pooling window over x padded with `pad_value`."""
    batch, channels, height, width = _shape(x)
    top, left, bottom, right = padding
    padded = _pad(x, top, left, bottom, right, pad_value)
    out_h = (height + top + bottom - pool[0]) // strides[0] + 1
    out_w = (width + left + right - pool[1]) // strides[1] + 1
    ry, rx = te.reduce_axis((0, pool[0]), "ry"), te.reduce_axis((0, pool[1]), "rx")
    return te.compute((batch, channels, out_h, out_w),
                      lambda n, c, y, w: te.sum(_int32(padded[n, c, y * strides[0] + ry, w * strides[1] + rx]),
                                                axis=[ry, rx]), name="sum")


def avg_pool2d(x: te.Tensor, *, pool: Sequence[int], strides: Sequence[int], padding: Sequence[int],
               input_zero_point: int, left_shift: int, multiplier: int, shift: int,
               requantize: Requantize) -> te.Tensor:
    """Window sums padded with the zero point (padding counts, as with count_include_pad). With the
    output in the input's quantization, TFLM's arithmetic: the raw sum divided by the window size,
    rounded half away from zero, then clamped. Else the sum less the window's zero points, shifted
    left by `left_shift`, is requantized (1/window size and 2**-left_shift in the multiplier)."""
    total = _window_sums(x, pool, strides, padding, input_zero_point)
    count = pool[0] * pool[1]
    if requantize.zero_point == input_zero_point and _is_plain_average(count, left_shift, multiplier, shift):
        return te.compute(total.shape, lambda *i: _rounded_average(total[i], count, requantize), name="average")
    offset = count * input_zero_point
    return te.compute(total.shape, lambda *i: requantize(_shifted(total[i], offset, left_shift), multiplier, shift),
                      name="requantize")


def avg_pool2d_valid(x: te.Tensor, *, pool: Sequence[int], strides: Sequence[int], padding: Sequence[int],
                     requantize: Requantize) -> te.Tensor:
    """TFLM's int8 AVERAGE_POOL_2D with padding (the output in the input's quantization): the raw
    sum of the window's elements inside the input over their count, rounded half away from zero."""
    _, _, height, width = _shape(x)
    total = _window_sums(x, pool, strides, padding, 0)

    def inside(out, stride: int, before: int, kernel: int, size: int) -> tirx.PrimExpr:
        origin = out * stride - before
        return tirx.min(tirx.const(kernel, "int32"), size - origin) - tirx.max(tirx.const(0, "int32"), 0 - origin)

    def average(n, c, y, w) -> tirx.PrimExpr:
        count = inside(y, strides[0], padding[0], pool[0], height) * inside(w, strides[1], padding[1], pool[1], width)
        return _rounded_average(total[n, c, y, w], count, requantize)

    return te.compute(total.shape, average, name="average")


@dataclass(frozen=True)
class RescaleInput:
    """One input of an add or concat: its zero point and the Q31 rescale to the common scale."""

    zero_point: int
    multiplier: int
    shift: int


def _broadcast_shape(a: te.Tensor, b: te.Tensor) -> tuple[int, ...]:
    """numpy's broadcast of two static shapes (aligned at the last axis)."""
    return tuple(int(d) for d in np.broadcast_shapes(_shape(a), _shape(b)))


def _broadcast(tensor: te.Tensor, index) -> tirx.PrimExpr:
    """The element of `tensor` that numpy broadcasting gives output `index` (axes of extent 1 repeat)."""
    shape = _shape(tensor)
    index = index[len(index) - len(shape):]
    return tensor[tuple(0 if extent == 1 else i for extent, i in zip(shape, index))]


def add(a: te.Tensor, b: te.Tensor, *, inputs: tuple[RescaleInput, RescaleInput], left_shift: int,
        output_multiplier: int, output_shift: int, requantize: Requantize, subtract: bool = False) -> te.Tensor:
    """TFLM's int8 add (or, with `subtract`, sub): both inputs shifted left by `left_shift`, rescaled
    to twice the larger input scale, summed (or a - b) and requantized to the output; a and b
    broadcast as numpy does."""
    rescale = requantize.unclamped()

    def term(tensor: te.Tensor, spec: RescaleInput, index) -> tirx.PrimExpr:
        return rescale(_shifted(_broadcast(tensor, index), spec.zero_point, left_shift), spec.multiplier, spec.shift)

    def element(*i) -> tirx.PrimExpr:
        first, second = term(a, inputs[0], i), term(b, inputs[1], i)
        return requantize(first - second if subtract else first + second, output_multiplier, output_shift)

    return te.compute(_broadcast_shape(a, b), element, name="sub" if subtract else "add")


def mul(a: te.Tensor, b: te.Tensor, *, zero_points: tuple[int, int], multiplier: int, shift: int,
        requantize: Requantize) -> te.Tensor:
    """TFLM's int8 mul: the product of the two inputs less their zero points, requantized by
    input scale x input scale / output scale; a and b broadcast as numpy does."""
    return te.compute(_broadcast_shape(a, b),
                      lambda *i: requantize((_int32(_broadcast(a, i)) - zero_points[0])
                                            * (_int32(_broadcast(b, i)) - zero_points[1]), multiplier, shift),
                      name="mul")


def concat(*tensors: te.Tensor, axis: int, inputs: tuple[RescaleInput | None, ...], left_shift: int,
           requantize: Requantize) -> te.Tensor:
    """The inputs joined along `axis`, each first rescaled to the output's quantization (None: it
    is already in it), from its value less the zero point shifted left by `left_shift`."""

    def rescaled(tensor: te.Tensor, spec: RescaleInput | None) -> te.Tensor:
        if spec is None:
            return tensor
        return te.compute(_shape(tensor), lambda *i: requantize(_shifted(tensor[i], spec.zero_point, left_shift),
                                                                spec.multiplier, spec.shift), name="rescale")

    return topi.concatenate([rescaled(t, spec) for t, spec in zip(tensors, inputs)], axis)


def requantize(x: te.Tensor, *, input_zero_point: int, multiplier: int, shift: int,
               requantize: Requantize) -> te.Tensor:
    """int8 to int8 in another quantization (TFLM's QUANTIZE): (x - zero point) requantized."""
    return te.compute(_shape(x), lambda *i: requantize(_int32(x[i]) - input_zero_point, multiplier, shift),
                      name="requantize")
