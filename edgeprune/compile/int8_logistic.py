"""TFLM's int8 LOGISTIC and TANH: the output depends on the int8 input value only, so the kernel is a
256-entry table lookup, the table computed on the host with gemmlowp's fixed-point logistic (or
tanh) exactly as TFLM's reference_integer_ops::Logistic (Tanh) computes each value (output scale
1/256 and zero point -128; for tanh 1/128 and 0)."""
from __future__ import annotations

import math

import numpy as np
from tvm import te

from edgeprune.compile import gemmlowp
from edgeprune.compile.requantize import multiply_by_quantized_multiplier

INPUT_INTEGER_BITS = 4  # the rescaled input as gemmlowp FixedPoint<int32, 4>
LOGISTIC_OUTPUT_BITS = 8  # fractional bits of the output: logistic in Q8 (scale 1/256)
TANH_OUTPUT_BITS = 7  # tanh in Q7 (scale 1/128)


def _parameters(input_scale: float) -> tuple[int, int, int]:
    """(multiplier, left shift, input range radius) as TFLM's CalculateArithmeticOpData for int8."""
    mantissa, left_shift = math.frexp(float(np.float32(input_scale)) * (1 << (31 - INPUT_INTEGER_BITS)))
    multiplier = int(math.floor(mantissa * (1 << 31) + 0.5))
    radius = ((1 << INPUT_INTEGER_BITS) - 1) * (1 << (31 - INPUT_INTEGER_BITS)) / (1 << left_shift)
    return multiplier, left_shift, int(math.floor(radius))


def _logistic(a: np.ndarray) -> np.ndarray:
    """gemmlowp's logistic of a FixedPoint<int32, 4> (raw) into Q31."""
    positive = a > 0
    exp_negative = gemmlowp.exp_on_negative_values(-np.abs(a), INPUT_INTEGER_BITS)
    if_positive = gemmlowp.one_over_one_plus_x(exp_negative)
    result = np.where(positive, if_positive, gemmlowp.INT32_MAX - if_positive)
    return np.where(a == 0, 1 << 30, result)


def _table(input_scale: float, input_zero_point: int, function, output_bits: int, offset: int) -> np.ndarray:
    """The int8 output for each int8 input -128 ... 127 (index = input + 128): `function` of the
    input rescaled to Q4.27, in Q31, divided down to `output_bits` fractional bits, plus `offset`;
    inputs beyond the radius saturate."""
    multiplier, left_shift, radius = _parameters(input_scale)
    x = np.arange(-128, 128, dtype=np.int64) - input_zero_point
    rescaled = multiply_by_quantized_multiplier(x, multiplier, left_shift)
    value = gemmlowp.divide_by_pot(function(rescaled), 31 - output_bits) + offset
    value = np.where(x <= -radius, -128, np.where(x >= radius, 127, np.clip(value, -128, 127)))
    return value.astype(np.int8)


def logistic_table(input_scale: float, input_zero_point: int) -> np.ndarray:
    """TFLM's int8 logistic of each int8 input (output scale 1/256, zero point -128)."""
    return _table(input_scale, input_zero_point, _logistic, LOGISTIC_OUTPUT_BITS, -128)


def tanh_table(input_scale: float, input_zero_point: int) -> np.ndarray:
    """TFLM's int8 tanh of each int8 input (output scale 1/128, zero point 0)."""
    return _table(input_scale, input_zero_point, lambda a: gemmlowp.tanh(a, INPUT_INTEGER_BITS), TANH_OUTPUT_BITS, 0)


def lookup(x: te.Tensor, table: te.Tensor) -> te.Tensor:
    """Each int8 element replaced by table[element + 128]."""
    return te.compute(x.shape, lambda *i: table[x[i].astype("int32") + 128], name="lookup")
