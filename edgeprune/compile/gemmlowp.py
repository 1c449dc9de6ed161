"""gemmlowp's fixed-point arithmetic in numpy (int64 arrays holding int32 values), as TFLM's int8
softmax, logistic and tanh use it: run on the host to build their kernels' tables, bit for bit."""
from __future__ import annotations

import numpy as np

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
# exp_on_negative_values' barrel shifter: exp(-2**k) in Q31 for k = -2..4.
EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535), (3, 720401),
              (4, 242))


def high_mul(a: np.ndarray, b) -> np.ndarray:
    """SaturatingRoundingDoublingHighMul (the product's sign-nudged truncation equals this floor)."""
    a, b = np.broadcast_arrays(np.asarray(a, np.int64), np.asarray(b, np.int64))
    return np.where((a == b) & (a == INT32_MIN), INT32_MAX, (a * b + (1 << 30)) >> 31)


def divide_by_pot(x: np.ndarray, exponent: int) -> np.ndarray:
    """RoundingDivideByPOT: x / 2**exponent rounded half away from zero."""
    mask = (1 << exponent) - 1
    return (x >> exponent) + ((x & mask) > (mask >> 1) + (x < 0))


def saturating_shift_left(x: np.ndarray, exponent: int) -> np.ndarray:
    """SaturatingRoundingMultiplyByPOT for a positive exponent."""
    return np.clip(np.asarray(x, np.int64) << exponent, INT32_MIN, INT32_MAX)


def exp_on_negative_values(a: np.ndarray, integer_bits: int) -> np.ndarray:
    """exp of a non-positive FixedPoint<int32, integer_bits> (raw) into Q31."""
    fraction_bits = 31 - integer_bits
    quarter = 1 << (fraction_bits - 2)
    a_mod = (a & (quarter - 1)) - quarter
    x = saturating_shift_left(a_mod, integer_bits) + (1 << 28)
    x2 = high_mul(x, x)
    x3 = high_mul(x2, x)
    x4_over_4 = divide_by_pot(high_mul(x2, x2), 2)
    poly = divide_by_pot(high_mul(x4_over_4 + x3, 715827883) + x2, 1)
    result = 1895147668 + high_mul(1895147668, x + poly)
    remainder = a_mod - a
    for exponent, multiplier in EXP_BARREL:
        if integer_bits > exponent:
            result = np.where(remainder & (1 << (fraction_bits + exponent)), high_mul(result, multiplier), result)
    return np.where(a == 0, INT32_MAX, result)


def _newton_reciprocal(a: np.ndarray) -> np.ndarray:
    """The Newton-Raphson 1 / (1 + a) of gemmlowp's one_over/one_minus_x_over_one_plus_x, a in Q31,
    the result in FixedPoint<int32, 2>."""
    half = (np.asarray(a, np.int64) + INT32_MAX + 1) >> 1
    x = 1515870810 + high_mul(half, -1010580540)
    for _ in range(3):
        x = x + saturating_shift_left(high_mul(x, (1 << 29) - high_mul(half, x)), 2)
    return x


def one_over_one_plus_x(a: np.ndarray) -> np.ndarray:
    """one_over_one_plus_x_for_x_in_0_1 in Q31 (Newton-Raphson, three steps)."""
    return saturating_shift_left(_newton_reciprocal(a), 1)


def one_minus_x_over_one_plus_x(a: np.ndarray) -> np.ndarray:
    """one_minus_x_over_one_plus_x_for_x_in_0_1 in Q31: 2 / (1 + a) - 1."""
    return saturating_shift_left(_newton_reciprocal(a) - (1 << 29), 2)


def tanh(a: np.ndarray, integer_bits: int) -> np.ndarray:
    """gemmlowp's tanh of a FixedPoint<int32, integer_bits> (raw) into Q31: from exp(-2|a|), the
    input's raw value read with one more integer bit."""
    a = np.asarray(a, np.int64)
    t = one_minus_x_over_one_plus_x(exp_on_negative_values(-np.abs(a), integer_bits + 1))
    return np.where(a == 0, 0, np.where(a < 0, -t, t))
