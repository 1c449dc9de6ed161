"""TFLM's int8 softmax as a TE kernel: gemmlowp's fixed-point exp of the rescaled differences to
the row maximum, their sum in Q12, a Newton-Raphson reciprocal, and an int8 output with scale
1/256 and zero point -128 (TFLM's reference_ops::Softmax with its default double rounding).

The exp of a difference depends on the difference only (0 ... -255 for int8), so it is a table of
256 int32 computed on the host with gemmlowp's own arithmetic (`exp_table`); the reciprocal of
each row's sum is computed in the kernel. (TIR `Let` chains for the polynomial hang TVM 0.27's
bound analyzer; a table keeps the kernel small.)"""
from __future__ import annotations

import math

import numpy as np
from tvm import te, tirx

from edgeprune.compile import gemmlowp
from edgeprune.compile.requantize import quantize_multiplier

SCALED_DIFF_INTEGER_BITS = 5  # the differences as gemmlowp FixedPoint<int32, 5>
ACCUMULATION_INTEGER_BITS = 12  # the sum of exps as FixedPoint<int32, 12>
_I32, _I64 = "int32", "int64"
_INT32_MAX, _INT32_MIN = gemmlowp.INT32_MAX, gemmlowp.INT32_MIN


def softmax_parameters(beta: float, input_scale: float) -> tuple[int, int, int]:
    """(input multiplier, left shift, diff_min) as TFLM's PreprocessSoftmaxScaling and
    CalculateInputRadius compute them for an int8 input."""
    real = min(beta * input_scale * (1 << (31 - SCALED_DIFF_INTEGER_BITS)), (1 << 31) - 1.0)
    multiplier, shift = quantize_multiplier(np.array(real))
    radius = ((1 << SCALED_DIFF_INTEGER_BITS) - 1) * (1 << (31 - SCALED_DIFF_INTEGER_BITS)) / (1 << int(shift))
    return int(multiplier), int(shift), -int(math.floor(radius))


def _const(value: int, dtype: str = _I32) -> tirx.PrimExpr:
    return tirx.const(value, dtype)


def exp_table(multiplier: int, left_shift: int, diff_min: int) -> np.ndarray:
    """TFLM's exp of each int8 difference to the row maximum, 0 ... -255 (index = -difference), in
    Q31; 0 below diff_min, where TFLM leaves the element out of the sum and outputs -128."""
    diff = -np.arange(256, dtype=np.int64)
    table = gemmlowp.exp_on_negative_values(gemmlowp.high_mul(diff * (1 << left_shift), multiplier),
                                            SCALED_DIFF_INTEGER_BITS)
    return np.where(diff >= diff_min, table, 0).astype(np.int32)


# ---- the kernel's fixed point in TIR: each helper uses each operand once where it can ----
def _high_mul(a: tirx.PrimExpr, b) -> tirx.PrimExpr:
    """SaturatingRoundingDoublingHighMul where a, b cannot both be INT32_MIN (one is positive)."""
    b = _const(b) if isinstance(b, int) else b
    return tirx.shift_right(a.astype(_I64) * b.astype(_I64) + _const(1 << 30, _I64), _const(31, _I64)).astype(_I32)


def _divide_by_pot(x: tirx.PrimExpr, exponent) -> tirx.PrimExpr:
    """gemmlowp's RoundingDivideByPOT: x / 2**exponent rounded half away from zero."""
    exponent = _const(exponent) if isinstance(exponent, int) else exponent
    x64, e64 = x.astype(_I64), exponent.astype(_I64)
    mask = tirx.shift_left(_const(1, _I64), e64) - _const(1, _I64)
    threshold = tirx.shift_right(mask, _const(1, _I64)) + (x < _const(0)).astype(_I64)
    return (tirx.shift_right(x64, e64) + ((x64 & mask) > threshold).astype(_I64)).astype(_I32)


def _saturating_shift_left(x: tirx.PrimExpr, exponent: int) -> tirx.PrimExpr:
    """SaturatingRoundingMultiplyByPOT for a positive exponent (a clamp of the exact product)."""
    shifted = tirx.shift_left(x.astype(_I64), _const(exponent, _I64))
    return tirx.min(tirx.max(shifted, _const(_INT32_MIN, _I64)), _const(_INT32_MAX, _I64)).astype(_I32)


def _stage(rows: int, body, name: str) -> te.Tensor:
    """A row's intermediate as a reduction over one element, one per row. LeanSchedule inlines
    elementwise stages, and inlined, the Newton steps' expression trees triple per step (TVM's
    analyzer then runs for minutes); it inlines no reduction."""
    unit = te.reduce_axis((0, 1), f"{name}_unit")
    return te.compute((rows,), lambda r: te.sum(body(r) + unit, axis=unit), name=name)


def _reciprocal(shifted_sum_minus_one: te.Tensor) -> te.Tensor:
    """gemmlowp's one_over_one_plus_x_for_x_in_0_1 (Newton-Raphson, three steps), Q31 in and out, per row."""
    (rows,) = (int(d) for d in shifted_sum_minus_one.shape)
    half = _stage(rows, lambda r: tirx.shift_right(shifted_sum_minus_one[r].astype(_I64) + _const(_INT32_MAX + 1, _I64),
                                                   _const(1, _I64)).astype(_I32), "half")
    x = _stage(rows, lambda r: _const(1515870810) + _high_mul(half[r], -1010580540), "newton0")
    for step in range(1, 4):
        x = _stage(rows, lambda r, x=x: x[r] + _saturating_shift_left(
            _high_mul(x[r], _const(1 << 29) - _high_mul(half[r], x[r])), 2), f"newton{step}")
    return te.compute((rows,), lambda r: _saturating_shift_left(x[r], 1), name="reciprocal")


def _leading_zeros(x: tirx.PrimExpr) -> tirx.PrimExpr:
    """Leading zero bits of a positive int32 (comparisons only: no clz intrinsic needed)."""
    return sum((x < _const(1 << k)).astype(_I32) for k in range(1, 31)) + _const(1)


def softmax(x: te.Tensor, table: te.Tensor, *, sum_shift: int = ACCUMULATION_INTEGER_BITS) -> te.Tensor:
    """Softmax of each row of int8 `x` of shape (rows, depth), into int8 (scale 1/256, zero point
    -128), as TFLM; `table` is `exp_table` of the input's scaling. Rows of up to 511 elements."""
    rows, depth = (int(d) for d in x.shape)
    k, j = te.reduce_axis((0, depth), "k"), te.reduce_axis((0, depth), "j")
    row_max = te.compute((rows,), lambda r: te.max(x[r, k].astype(_I32), axis=k), name="row_max")

    def exp(r, c) -> tirx.PrimExpr:
        return table[row_max[r] - x[r, c].astype(_I32)]

    total = te.compute((rows,), lambda r: te.sum(_divide_by_pot(exp(r, j), sum_shift), axis=j), name="sum_exps")
    headroom = te.compute((rows,), lambda r: _leading_zeros(total[r]), name="headroom")
    shifted = _stage(rows, lambda r: (tirx.shift_left(total[r].astype(_I64), headroom[r].astype(_I64))
                                      - _const(1 << 31, _I64)).astype(_I32), "shifted_sum")
    scale = _reciprocal(shifted)

    def output(r, c) -> tirx.PrimExpr:
        # 35 - headroom is within [4, 31] for rows of fewer than 512 elements; the explicit bounds keep
        # TVM's bound analysis, which otherwise drops the clamp below, from assuming an unbounded shift.
        exponent = tirx.min(tirx.max(_const(sum_shift + 31 - 8) - headroom[r], _const(0)), _const(31))
        value = _divide_by_pot(_high_mul(scale[r], exp(r, c)), exponent)
        return tirx.min(tirx.max(value - _const(128), _const(-128)), _const(127)).astype("int8")

    return te.compute((rows, depth), output, name="softmax")
