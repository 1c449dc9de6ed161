"""The passes that stand in for TVM's MakePackedAPI on bare metal: every kernel becomes a plain C
function `int32_t kernel(T *arg0, T *arg1, ...)` that returns 0, or -1 if its workspace ran out.
`return 0` is added after LowerTVMBuiltin (ReturnZero), so that it follows the workspace frees
LowerTVMBuiltin puts at the end of the body: before it, the frees were unreachable."""
from __future__ import annotations

import tvm
import tvm_ffi
from tvm import tirx
from tvm.ir import PointerType, PrimType

_BUFFER_DATA = tvm.ir.Op.get("tirx.buffer_data")
_KDL_CPU = 1


def _to_plain_pointers(func: tirx.PrimFunc, name: str, target) -> tirx.PrimFunc:
    pointers = {p: tirx.Var(p.name, PointerType(p.ty.dtype)) for p in func.params}

    def replace_buffer_data(call, mutator):
        if call.op.same_as(_BUFFER_DATA) and call.args[0] in pointers:
            return pointers[call.args[0]]
        return mutator.default_mutate(call)

    body = tvm_ffi.structural_mutate(func.body, [(tvm.ir.expr.Call, replace_buffer_data)])
    zero = tirx.const(0, "int32")
    # LowerTVMBuiltin reads the device from these attributes (MakePackedAPI would add them).
    body = tirx.AttrStmt(zero, "device_id", zero, body)
    body = tirx.AttrStmt(tvm.runtime.convert("default"), "device_type", tirx.const(_KDL_CPU, "int32"), body)
    plain = tirx.PrimFunc(list(pointers.values()), body, ret_type=PrimType("int32"), attrs=func.attrs)
    return plain.with_attr("global_symbol", name).with_attr("target", target)


def PlainPointerSignature(target) -> tvm.transform.Pass:
    """Module pass: give each PrimFunc a pointer-per-buffer signature and an exported symbol."""

    @tvm.transform.module_pass(opt_level=0, name="PlainPointerSignature")
    def _pass(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        return tvm.IRModule(
            {gv: _to_plain_pointers(f, gv.name_hint, target) for gv, f in mod.functions.items()}
        )

    return _pass


def ReturnZero() -> tvm.transform.Pass:
    """Module pass: end each kernel's body with `return 0` (run it after LowerTVMBuiltin)."""

    @tvm.transform.module_pass(opt_level=0, name="ReturnZero")
    def _pass(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        return tvm.IRModule({gv: f.with_body(tirx.SeqStmt([f.body, tirx.Return(tirx.const(0, "int32"))]))
                             for gv, f in mod.functions.items()})

    return _pass
