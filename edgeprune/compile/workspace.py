"""Kernel workspace sizing from the lowered TIR: a walk over each kernel's calls to
TVMBackendAllocWorkspace / TVMBackendFreeWorkspace in program order (they nest LIFO)."""
from __future__ import annotations

import tvm
import tvm_ffi

from edgeprune.compile.plan import align

_ALLOC = tvm.ir.Op.get("tirx.TVMBackendAllocWorkspace")
_FREE = tvm.ir.Op.get("tirx.TVMBackendFreeWorkspace")


def kernel_workspace_bytes(func) -> int:
    """Peak bytes of workspace one kernel holds at once (aligned as the device allocator does)."""
    live: list[int] = []
    peak = 0

    def on_call(call):
        nonlocal peak
        if call.op.same_as(_ALLOC):
            live.append(align(int(call.args[2])))
            peak = max(peak, sum(live))
        elif call.op.same_as(_FREE) and live:
            live.pop()

    tvm_ffi.structural_walk(func.body, [(tvm.ir.expr.Call, on_call)], order="pre")
    return peak


def workspace_bytes(kernels: tvm.IRModule) -> dict[str, int]:
    """Workspace peak per kernel; the firmware needs the largest (kernels run one at a time)."""
    return {gv.name_hint: kernel_workspace_bytes(f) for gv, f in kernels.functions.items()}
