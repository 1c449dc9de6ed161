"""TFLite Micro / CMSIS-NN requantization: a real multiplier as a Q31 integer and a shift, applied
with gemmlowp's saturating rounding doubling high multiply and rounding divide by a power of two.

`quantize_multiplier` runs on the host (numpy); `multiply_by_quantized_multiplier` is the
reference semantics that the kernels' `int8_kernels.Requantize` is tested against."""
from __future__ import annotations

import numpy as np

from edgeprune.compile.defaults import ROUNDINGS


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


def multiply_by_quantized_multiplier(x: np.ndarray, multiplier: np.ndarray, shift: np.ndarray,
                                     rounding: str = "double") -> np.ndarray:
    """The reference semantics in numpy (int64), used by tests against the compiled kernels:
    TFLM's default two roundings, or its TFLITE_SINGLE_ROUNDING variant."""
    x, multiplier, shift = (np.asarray(v, np.int64) for v in (x, multiplier, shift))
    if rounding == "single":
        total = 31 - shift
        return (x * multiplier + (np.int64(1) << (total - 1))) >> total
    x = x * (np.int64(1) << np.maximum(shift, 0))
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
