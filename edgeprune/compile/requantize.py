"""TFLite Micro / CMSIS-NN requantization: a real multiplier as a Q31 integer and a shift, applied
with gemmlowp's saturating rounding doubling high multiply and rounding divide by a power of two.

`quantize_multiplier` runs on the host (numpy); `requantize` builds the same arithmetic as Relax
integer ops, which fuse into the producing kernel's epilogue."""
from __future__ import annotations

import numpy as np
from tvm import relax
from tvm.relax import op as R


def quantize_multiplier(real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(multiplier, shift) per element with real = multiplier * 2**(shift - 31), multiplier in
    [2**30, 2**31) (TFLM's QuantizeMultiplier; rounding half away from zero)."""
    real = np.asarray(real, dtype=np.float64)
    if np.any(real < 0):
        raise ValueError("requantization multipliers must be non-negative")
    mantissa, exponent = np.frexp(real)
    fixed = np.floor(mantissa * (1 << 31) + 0.5).astype(np.int64)
    carry = fixed == (1 << 31)
    fixed = np.where(carry, fixed // 2, fixed)
    exponent = np.where(carry, exponent + 1, exponent)
    tiny = exponent < -31
    return np.where(tiny, 0, fixed).astype(np.int64), np.where(tiny, 0, exponent).astype(np.int64)


def multiply_by_quantized_multiplier(x: np.ndarray, multiplier: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """The reference semantics in numpy (int64), used by tests against the compiled kernels."""
    x = np.asarray(x, np.int64) * (np.int64(1) << np.maximum(shift, 0))
    product = x * multiplier
    nudge = np.where(product >= 0, 1 << 30, 1 - (1 << 30))
    high = _trunc_shift(product + nudge, 31)
    right = np.maximum(-shift, 0)
    mask = (np.int64(1) << right) - 1
    remainder = high & mask
    threshold = (mask >> 1) + (high < 0)
    return (high >> right) + (remainder > threshold)


def _trunc_shift(value: np.ndarray, bits: int) -> np.ndarray:
    """value / 2**bits rounded toward zero (C integer division)."""
    return np.where(value >= 0, value >> bits, -((-value) >> bits))


def _per_channel(values: np.ndarray, shape: tuple[int, ...]) -> relax.Expr:
    """A per-channel int64 constant. (An int32 constant cast in the graph would halve its flash,
    but FuseOps leaves a cast of a constant as a kernel of its own that writes the arena.)"""
    return relax.const(np.asarray(values, np.int64).reshape(shape), "int64")


def _i64(value: int) -> relax.Constant:
    return relax.const(value, "int64")


def requantize(acc: relax.Expr, multiplier: np.ndarray, shift: np.ndarray, zero_point: int,
               qmin: int, qmax: int, channel_shape: tuple[int, ...], out_dtype: str = "int8") -> relax.Expr:
    """out_dtype = clamp(zero_point + MBQM(acc, multiplier, shift), qmin, qmax), with one
    multiplier and one shift per channel (int64 constants) broadcast as `channel_shape` ((1, C, 1, 1), or ()).

    Two identities keep the fused kernel small (each intermediate is read at most twice, so
    inlining does not blow up the expression), with results equal to TFLM's formulas:
    - SRDHM's nudged division truncating toward zero is `(a*b + 2**30) >> 31` (arithmetic shift);
    - the rounding divide by 2**e (half away from zero) is `(x + 2**(e-1) - (x < 0)) >> e`.
    `tests/test_int8.py` checks both against `multiply_by_quantized_multiplier`."""
    zero, one = _i64(0), _i64(1)
    x = R.astype(acc, "int64")
    shift_ = _per_channel(shift, channel_shape)
    if np.any(shift > 0):
        x = R.left_shift(x, R.maximum(shift_, zero))
    high = R.right_shift(R.add(R.multiply(x, _per_channel(multiplier, channel_shape)), _i64(1 << 30)), _i64(31))
    right = R.maximum(R.negative(shift_), zero)
    half = R.right_shift(R.left_shift(one, right), one)  # 2**(right-1), or 0 when right == 0
    negative_fix = R.where(R.less(high, zero), R.minimum(right, one), zero)
    rounded = R.right_shift(R.subtract(R.add(high, half), negative_fix), right)
    clamped = R.minimum(R.maximum(R.add(rounded, _i64(zero_point)), _i64(qmin)), _i64(qmax))
    return R.astype(clamped, out_dtype)
