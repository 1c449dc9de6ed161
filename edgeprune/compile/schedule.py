"""Default memory-lean schedule for bare metal: no full-size intermediates inside a kernel.

LegalizeOps writes each fused kernel as a chain of stages (pad -> conv -> bias add -> ReLU), each
stage into its own full-size buffer, which lands in the workspace. Here every elementwise stage
is inlined into its consumer, and what follows a reduction is computed at the reduction's
innermost spatial loop, so each intermediate shrinks to one element (a register).

Register blocks: where the output channels (axis 1 of a conv's NCHW output or of a dense
layer's output) come in multiples of `ROWS` (else of 2), a reduction computes that many channels
at once, each input element loaded once for all of them into unrolled accumulators, and the
epilogue runs per block. Depthwise convolutions, whose channels share no input, keep one channel
at a time. That makes channel counts matter, as in CMSIS-NN: a multiple of 4 output channels is
the fast path (see `scripts/bench/compile_zoo.py`)."""
from __future__ import annotations

import tvm
import tvm_ffi
from tvm import s_tir, tirx

from edgeprune.compile.dsp import conv, dense
from edgeprune.compile.dsp.packing import padded_length

ROWS = 4
SCHEDULED = "edgeprune.scheduled"  # PrimFunc attribute of kernels written loop by loop: no schedule pass applies


def is_scheduled(func: tirx.PrimFunc) -> bool:
    """Whether a kernel was written already scheduled (the DSP kernels), so schedules leave it."""
    return bool(func.attrs and func.attrs.get(SCHEDULED, False))


def is_reduction(sch: s_tir.Schedule, block) -> bool:
    return any(iv.iter_type == tirx.IterVar.CommReduce for iv in sch.get(block).iter_vars)


def _spatial_depth(sch: s_tir.Schedule, block) -> int:
    return sum(iv.iter_type == tirx.IterVar.DataPar for iv in sch.get(block).iter_vars)


def try_primitive(primitive, *args) -> bool:
    """Apply a schedule primitive if it is legal here; whether it was."""
    try:
        primitive(*args)
        return True
    except (s_tir.schedule.ScheduleError, tvm.error.InternalError):
        return False


def channels_per_pass(kind: str, channels: int, dsp: bool, depth: int) -> int:
    """Output channels a bare-metal int8 kernel computes per pass over its input, for a layer of
    `kind` ('conv', 'depthwise' or 'linear') with a reduction of `depth` elements per output:
    this schedule's register block (4, else 2, else 1, as the count divides), or on DSP cores the
    GEMM tile of `compile/dsp` (2 for convolutions, 1 for those with a reduction short enough
    for the weights-stationary GEMM, 4 for dense layers, any remainder in a tail that costs
    little). A depthwise convolution computes one channel at a time either way."""
    if kind == "depthwise":
        return 1
    if dsp and kind == "conv" and padded_length(depth) <= conv.STATIONARY:
        return 1
    if dsp:
        return min(channels, dense.ROWS if kind == "linear" else conv.CHANNELS)
    return largest_factor(channels, ROWS)


def largest_factor(extent: int, widest: int) -> int:
    """The largest power of two up to `widest` dividing `extent` (1 if none): no loop tails."""
    factor = widest
    while factor > 1 and extent % factor:
        factor //= 2
    return factor


def uses(expr, var: tirx.Var) -> bool:
    """Whether `expr` refers to `var`."""
    found = []
    tvm_ffi.structural_walk(expr, [(tirx.Var, lambda v: found.append(v.same_as(var)))], order="pre")
    return any(found)


def _shares_inputs(sch: s_tir.Schedule, block, channel: tirx.Var) -> bool:
    """Whether some read of the block does not depend on the output channel (the input of a
    regular conv or dense layer; not of a depthwise conv)."""
    return any(not any(uses(r.min, channel) for r in read.region) for read in sch.get(block).reads)


def _register_block(sch: s_tir.Schedule, block, rows: int) -> bool:
    """Compute `rows` output channels per pass of the reduction, with the epilogue per block;
    whether the block was tiled."""
    loops = sch.get_loops(block)
    kinds = [iv.iter_type for iv in sch.get(block).iter_vars]
    spatial = _spatial_depth(sch, block)
    reductions_last = all(kind == tirx.IterVar.CommReduce for kind in kinds[spatial:])
    if len(loops) != len(kinds) or spatial < 2 or not reductions_last:
        return False
    if not _shares_inputs(sch, block, sch.get(block).iter_vars[1].var):
        return False
    row = largest_factor(int(sch.get(loops[1]).extent), rows)
    if row == 1:
        return False
    outer, inner = sch.split(loops[1], [None, row])
    sch.reorder(loops[0], outer, *loops[2:], inner)
    innermost_spatial = loops[spatial - 1] if spatial > 2 else outer
    consumers = sch.get_consumers(block)
    if len(consumers) == 1 and try_primitive(sch.reverse_compute_at, consumers[0], innermost_spatial):
        sch.unroll(sch.get_loops(consumers[0])[-1])
    sch.unroll(inner)
    init = sch.decompose_reduction(block, loops[spatial])
    sch.unroll(sch.get_loops(init)[-1])
    return True


def schedule_lean(func: tirx.PrimFunc, rows: int = ROWS) -> tirx.PrimFunc:
    sch = s_tir.Schedule(tvm.IRModule({"main": func}))
    root = sch.get_sblock("root")
    outputs = {sch.get(b).name_hint for b in sch.get_output_blocks(root)}
    for block in sch.get_child_blocks(root):
        if sch.get(block).name_hint not in outputs and not is_reduction(sch, block):
            try_primitive(sch.compute_inline, block)
    for block in sch.get_child_blocks(root):
        if not is_reduction(sch, block) or _register_block(sch, block, rows):
            continue
        consumers = sch.get_consumers(block)
        loops = sch.get_loops(block)
        depth = _spatial_depth(sch, block)
        if len(consumers) == 1 and 0 < depth <= len(loops):
            try_primitive(sch.reverse_compute_at, consumers[0], loops[depth - 1])
    return sch.mod["main"].with_attrs(func.attrs) if func.attrs else sch.mod["main"]


def LeanSchedule(rows: int = ROWS) -> tvm.transform.Pass:
    """Module pass applying `schedule_lean` to every PrimFunc."""

    @tvm.transform.module_pass(opt_level=0, name="LeanSchedule")
    def _pass(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        return tvm.IRModule({gv: f if is_scheduled(f) else schedule_lean(f, rows) for gv, f in mod.functions.items()})

    return _pass
