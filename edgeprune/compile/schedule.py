"""Default memory-lean schedule for bare metal: no full-size intermediates inside a kernel.

LegalizeOps writes each fused kernel as a chain of stages (pad -> conv -> bias add -> ReLU), each
stage into its own full-size buffer, which lands in the workspace. Here every elementwise stage
is inlined into its consumer, and what follows a reduction is computed at the reduction's
innermost spatial loop, so each intermediate shrinks to one element (a register)."""
from __future__ import annotations

import tvm
from tvm import s_tir, tirx


def is_reduction(sch: s_tir.Schedule, block) -> bool:
    return any(iv.iter_type == tirx.IterVar.CommReduce for iv in sch.get(block).iter_vars)


def _spatial_depth(sch: s_tir.Schedule, block) -> int:
    return sum(iv.iter_type == tirx.IterVar.DataPar for iv in sch.get(block).iter_vars)


def try_primitive(primitive, *args) -> bool:
    """Apply a schedule primitive if it is legal here; whether it was."""
    try:
        primitive(*args)
        return True
    except (s_tir.schedule.ScheduleError, tvm.error.TVMError):
        return False


def schedule_lean(func: tirx.PrimFunc) -> tirx.PrimFunc:
    sch = s_tir.Schedule(tvm.IRModule({"main": func}))
    root = sch.get_sblock("root")
    outputs = {sch.get(b).name_hint for b in sch.get_output_blocks(root)}
    for block in sch.get_child_blocks(root):
        if sch.get(block).name_hint not in outputs and not is_reduction(sch, block):
            try_primitive(sch.compute_inline, block)
    for block in sch.get_child_blocks(root):
        if not is_reduction(sch, block):
            continue
        consumers = sch.get_consumers(block)
        loops = sch.get_loops(block)
        depth = _spatial_depth(sch, block)
        if len(consumers) == 1 and 0 < depth <= len(loops):
            try_primitive(sch.reverse_compute_at, consumers[0], loops[depth - 1])
    return sch.mod["main"].with_attrs(func.attrs) if func.attrs else sch.mod["main"]


def LeanSchedule() -> tvm.transform.Pass:
    """Module pass applying `schedule_lean` to every PrimFunc."""

    @tvm.transform.module_pass(opt_level=0, name="LeanSchedule")
    def _pass(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        return tvm.IRModule({gv: schedule_lean(f) for gv, f in mod.functions.items()})

    return _pass
