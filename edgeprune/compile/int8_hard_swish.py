"""TFLM's int8 HARD_SWISH (reference_ops::HardSwish): x * relu6(x + 3) / 6 in int16 fixed point, with
two int16 multipliers (one to the output scale, one to the "reluish" scale of 3/32768). The output
depends on the int8 input only, so the kernel is a 256-entry table lookup (`int8_logistic.lookup`)
computed here on the host with TFLM's int16 arithmetic, value for value."""
from __future__ import annotations

import numpy as np

from edgeprune.compile import gemmlowp
from edgeprune.compile.requantize import quantize_multiplier

_INT16_MIN, _INT16_MAX = -(1 << 15), (1 << 15) - 1


def _int16_multiplier(real: float) -> tuple[int, int]:
    """QuantizeMultiplier, then DownScaleInt32ToInt16Multiplier: (Q15 multiplier, exponent)."""
    multiplier, exponent = (int(v) for v in quantize_multiplier(np.array(real)))
    if multiplier >= (1 << 31) - 1 - (1 << 15):
        return _INT16_MAX, exponent
    return (multiplier + (1 << 15)) >> 16, exponent


def _high_mul16(a: np.ndarray, b) -> np.ndarray:
    """gemmlowp's int16 SaturatingRoundingDoublingHighMul (C division: truncation toward zero)."""
    product = np.asarray(a, np.int64) * b
    nudged = product + np.where(product >= 0, 1 << 14, 1 - (1 << 14))
    result = np.where(nudged >= 0, nudged >> 15, -((-nudged) >> 15))
    return np.where((a == b) & (a == _INT16_MIN), _INT16_MAX, result)


def _doubling_high_mul16(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """TFLM's SaturatingDoublingHighMul: the same without the rounding nudge."""
    product = np.asarray(a, np.int64) * b
    result = np.where(product >= 0, product >> 15, -((-product) >> 15))
    return np.where((a == b) & (a == _INT16_MIN), _INT16_MAX, result)


def _saturating_left_shift16(x: np.ndarray, amount: int) -> np.ndarray:
    return np.clip(np.asarray(x, np.int64) * (1 << amount), _INT16_MIN, _INT16_MAX)


def multipliers(input_scale: float, output_scale: float) -> tuple[tuple[int, int], tuple[int, int]]:
    """The (Q15 multiplier, exponent) to the output scale and to the reluish scale, in TFLM's float32."""
    hires_scale = np.float32(1.0 / 128.0) * np.float32(input_scale)
    return (_int16_multiplier(float(hires_scale / np.float32(output_scale))),
            _int16_multiplier(float(hires_scale / np.float32(3.0 / 32768.0))))


def hard_swish_table(input_scale: float, input_zero_point: int, output_scale: float,
                     output_zero_point: int) -> np.ndarray:
    """The int8 output for each int8 input -128 ... 127 (index = input + 128); the output exponent
    of `multipliers` must be within [-15, 0] (TFLM requires <= 0; int16 shifts need >= -15)."""
    (output_multiplier, output_exponent), (reluish_multiplier, reluish_exponent) = multipliers(input_scale,
                                                                                              output_scale)
    hires = (np.arange(-128, 128, dtype=np.int64) - input_zero_point) * (1 << 7)
    preshift_output = _high_mul16(hires, output_multiplier)
    reluish = hires
    if reluish_exponent > 0:
        reluish = _saturating_left_shift16(reluish, reluish_exponent - 1)
    reluish = _high_mul16(reluish, reluish_multiplier)
    if reluish_exponent > 0:
        reluish = _saturating_left_shift16(reluish, 1)
    if reluish_exponent < 0:
        reluish = gemmlowp.divide_by_pot(reluish, -reluish_exponent)
    reluish = (reluish + (1 << 15)) >> 1
    output = gemmlowp.divide_by_pot(_doubling_high_mul16(reluish, preshift_output), -output_exponent)
    return np.clip(output + output_zero_point, -128, 127).astype(np.int8)
