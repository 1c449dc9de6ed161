"""Casts between 64-bit integers and float taken through int32 in every kernel.

Resize (and any kernel that computes an index from a float coordinate) casts float to int64 and
int64 loop variables to float. On 32-bit Arm, LLVM 22 lowers those casts to libgcc's
`__aeabi_f2lz` / `__aeabi_l2f` / `__aeabi_ul2f` but passes the float in a VFP register (the
hard-float convention), while libgcc's helpers take and return it in core registers (the base
AAPCS, as the Arm run-time ABI requires): the kernel computed garbage indices (all zeros on the M4).
Through int32 each cast is one VFP instruction and there is no library call. The values are
tensor indices and coordinates, far inside the int32 range."""
from __future__ import annotations

import tvm
import tvm_ffi
from tvm import tirx


def _is_int64(dtype: str) -> bool:
    return dtype in ("int64", "uint64")


def _is_float(dtype: str) -> bool:
    return dtype.startswith("float")


def _through_int32(cast: tirx.Cast, mutator) -> tirx.Cast:
    cast = mutator.default_mutate(cast)
    source, result = str(cast.value.ty), str(cast.ty)
    if (_is_int64(result) and _is_float(source)) or (_is_float(result) and _is_int64(source)):
        return tirx.Cast(result, tirx.Cast("int32", cast.value))
    return cast


def narrow_index_casts(func: tirx.PrimFunc) -> tirx.PrimFunc:
    """`func` with every int64 <-> float cast going through int32."""
    return func.with_body(tvm_ffi.structural_mutate(func.body, [(tirx.Cast, _through_int32)]))


def NarrowIndexCasts() -> tvm.transform.Pass:
    """Module pass applying `narrow_index_casts` to every PrimFunc."""

    @tvm.transform.module_pass(opt_level=0, name="NarrowIndexCasts")
    def _pass(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        return tvm.IRModule({gv: narrow_index_casts(f) for gv, f in mod.functions.items()})

    return _pass
