"""The Armv7E-M DSP instructions as LLVM intrinsics in TIR expressions (LLVM picks the registers).

A 32-bit word holds two int16 lanes: `lo` (bits 0-15) and `hi` (bits 16-31)."""
from __future__ import annotations

from tvm import tirx
from tvm.script import tirx as T


def sxtb16(word: tirx.PrimExpr) -> tirx.PrimExpr:
    """Bytes 0 and 2 of `word`, sign-extended into the lo and hi lanes."""
    return T.call_llvm_pure_intrin("int32", "llvm.arm.sxtb16", word)


def sxtb16_odd(word: tirx.PrimExpr) -> tirx.PrimExpr:
    """Bytes 1 and 3 of `word`, sign-extended into the lo and hi lanes (SXTB16 with ROR #8)."""
    return sxtb16(T.call_llvm_pure_intrin("int32", "llvm.fshr.i32", word, word, T.int32(8)))


def sadd16(a: tirx.PrimExpr, b: tirx.PrimExpr) -> tirx.PrimExpr:
    """(a.lo + b.lo, a.hi + b.hi), each lane wrapping at 16 bits."""
    return T.call_llvm_pure_intrin("int32", "llvm.arm.sadd16", a, b)


def smlad(a: tirx.PrimExpr, b: tirx.PrimExpr, acc: tirx.PrimExpr) -> tirx.PrimExpr:
    """acc + a.lo * b.lo + a.hi * b.hi."""
    return T.call_llvm_pure_intrin("int32", "llvm.arm.smlad", a, b, acc)


def smlabb(a: tirx.PrimExpr, b: tirx.PrimExpr, acc: tirx.PrimExpr) -> tirx.PrimExpr:
    """acc + a.lo * b.lo."""
    return T.call_llvm_pure_intrin("int32", "llvm.arm.smlabb", a, b, acc)


def smlatb(a: tirx.PrimExpr, b: tirx.PrimExpr, acc: tirx.PrimExpr) -> tirx.PrimExpr:
    """acc + a.hi * b.lo."""
    return T.call_llvm_pure_intrin("int32", "llvm.arm.smlatb", a, b, acc)


def smlabt(a: tirx.PrimExpr, b: tirx.PrimExpr, acc: tirx.PrimExpr) -> tirx.PrimExpr:
    """acc + a.lo * b.hi."""
    return T.call_llvm_pure_intrin("int32", "llvm.arm.smlabt", a, b, acc)


def smlatt(a: tirx.PrimExpr, b: tirx.PrimExpr, acc: tirx.PrimExpr) -> tirx.PrimExpr:
    """acc + a.hi * b.hi."""
    return T.call_llvm_pure_intrin("int32", "llvm.arm.smlatt", a, b, acc)


def store_in_order(buffer: tirx.Buffer, index: tirx.PrimExpr, value: tirx.PrimExpr) -> tirx.PrimExpr:
    """buffer[index] = value (int8) as a volatile store, which LLVM moves no load or store across
    (a one-byte volatile `llvm.memset`: TIR has no volatile store of its own). Call it in T.evaluate."""
    return T.call_llvm_intrin("void", "llvm.memset.p0.i32", T.address_of(buffer[index]), value, T.int32(1), T.bool(True))


def qadd(a: tirx.PrimExpr, b: tirx.PrimExpr) -> tirx.PrimExpr:
    """a + b saturated to int32 (QADD); opaque to LLVM, which cannot widen the sum into 64 bits."""
    return T.call_llvm_pure_intrin("int32", "llvm.arm.qadd", a, b)
