"""The MVE instructions as LLVM intrinsics in TIR expressions (LLVM picks the Q registers)."""
from __future__ import annotations

from tvm import tirx
from tvm.script import tirx as T


def vmladava(acc: tirx.PrimExpr, a: tirx.PrimExpr, b: tirx.PrimExpr) -> tirx.PrimExpr:
    """acc + the sum of the 16 lane products of int8x16 `a` and `b` (VMLADAVA.S8). LLVM's
    arguments: unsigned, subtract, exchange (all 0), accumulator, a, b."""
    return T.call_llvm_pure_intrin("int32", "llvm.arm.mve.vmldava.v16i8", T.int32(0), T.int32(0), T.int32(0),
                                   acc, a, b)
