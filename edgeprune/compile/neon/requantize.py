"""TFLM's requantize ("double" rounding) on int32x8 vectors with NEON's own instructions:
SQRDMULH is the saturating rounding doubling high multiply, and a rounding shift left by a
negative count (SRSHL, VRSHL on armv7) after subtracting 1 from negative values is the rounding
divide by a power of two, half away from zero. Both equal `int8_kernels.Requantize` bit for bit
(the multiplier is positive, so SQRDMULH never saturates); "single" rounding keeps Requantize's
own vector arithmetic. The M55's Helium has the same two (VQRDMULH, VRSHL: isa "mve", for the
depthwise kernel it borrows, `depthwise.py`)."""
from __future__ import annotations

from tvm.script import tirx as T

from edgeprune.compile.int8_kernels import Requantize

HALVES = ([0, 1, 2, 3], [4, 5, 6, 7])  # the lanes of an eight-lane vector's two quads
_AARCH64 = ("llvm.aarch64.neon.sqrdmulh.v4i32", "llvm.aarch64.neon.srshl.v4i32")
_INTRINSICS = {  # (high multiply, rounding shift) per instruction set (neon.gemm.ISAS, and "mve")
    "aarch64": _AARCH64, "dotprod": _AARCH64,
    "armv7": ("llvm.arm.neon.vqrdmulh.v4i32", "llvm.arm.neon.vrshifts.v4i32"),
    "mve": ("llvm.arm.mve.vqrdmulh.v4i32", "llvm.arm.mve.vshl.vector.v4i32.v4i32"),
}
_SHIFT_FLAGS = {"mve": (0, 1, 0)}  # MVE's vector shift intrinsic: saturate 0, round 1, unsigned 0 (VRSHL.S32)


def vector_requantize(requantize: Requantize, isa: str, per_lane: bool = False):
    """A function (acc int32x8, multiplier, shift) -> int8x8 (or int32x8 for an unclamped
    requantize) on instruction set `isa`; multiplier and shift are per-vector scalars (int32, int8),
    or with `per_lane` vectors of eight (int32x8, int8x8: one output channel per lane)."""
    if requantize.rounding != "double":
        if per_lane:
            return lambda acc, multiplier, shift: requantize(acc, multiplier, T.Cast("int32x8", shift))
        return lambda acc, multiplier, shift: requantize(acc, T.Broadcast(multiplier, 8),
                                                         T.Broadcast(T.Cast("int32", shift), 8))
    high_multiply, rounding_shift = _INTRINSICS[isa]

    def quarter(multiplier, shift, lanes):
        """Four lanes' multiplier, left shift and (negative) right shift count, as int32x4."""
        if per_lane:
            shift, zero = T.Shuffle([shift], lanes), T.Broadcast(T.int32(0), 4)
            return T.Shuffle([multiplier], lanes), T.max(shift, zero), T.min(shift, zero)
        return T.Broadcast(multiplier, 4), T.Broadcast(T.max(shift, 0), 4), T.Broadcast(T.min(shift, 0), 4)

    def half(acc, multiplier, shift, lanes):
        multiplier, left, negative_count = quarter(multiplier, shift, lanes)
        x = acc if requantize.negative_shifts else T.shift_left(acc, left)
        high = T.call_llvm_pure_intrin("int32x4", high_multiply, x, multiplier)
        fixup = T.shift_right(high & negative_count, T.Broadcast(T.int32(31), 4))
        return T.call_llvm_pure_intrin("int32x4", rounding_shift, high + fixup, negative_count,
                                       *(T.int32(flag) for flag in _SHIFT_FLAGS.get(isa, ())))

    def apply(acc, multiplier, shift):
        shift = T.Cast("int32x8" if per_lane else "int32", shift)
        value = T.Shuffle([half(T.Shuffle([acc], lanes), multiplier, shift, lanes) for lanes in HALVES],
                          list(range(8)))
        value = value + T.Broadcast(T.int32(requantize.zero_point), 8)
        if requantize.low is not None:
            value = T.min(T.max(value, T.Broadcast(T.int32(requantize.low), 8)), T.Broadcast(T.int32(requantize.high), 8))
        return T.Cast(f"{requantize.dtype}x8", value)

    return apply
