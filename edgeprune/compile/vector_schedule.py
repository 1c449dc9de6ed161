"""A register-tiled, vectorized schedule for Linux (Cortex-A, NEON) targets, which have RAM to
spare; bare-metal targets keep the memory-lean schedule (schedule.py).

In every kernel with a reduction (conv2d, depthwise conv2d, matmul) the innermost output axis is
split into `lanes`-wide vectors and the output-channel axis into `rows` rows; the reduction loops
run between the tile and the vector, so a rows x lanes block of accumulators stays in NEON
registers while every weight is broadcast once and every input vector is loaded once per row
block. The padding stage stays a separate buffer (no bounds test in the inner loop; it costs a
padded copy of the input in the workspace); the elementwise epilogue (bias, residual, ReLU, or
the int8 requantize) is computed per tile from the accumulators. An axis whose extent the
vector does not divide is left scalar: a tail loop keeps TVM from vectorizing at all. Where
vectors along the output would gather (a matmul with [N, K] weights, as the int8 dense kernel
has), the reduction is vectorized instead: `lanes` partial sums (rfactor), added once per output.

Measured on qemu-aarch64 -cpu cortex-a53 (fp32, instructions per inference): ResNet-8 95.4 M ->
6.4 M, MobileNet-0.25 22.7 M -> 9.4 M, digits CNN 1.38 M -> 0.15 M; DS-CNN (width-5 maps) 8.3 M
-> 7.3 M. 8 lanes x 4 rows beat 4 x 4 and 4 x 8 on ResNet-8 and MobileNet. int8: ResNet-8
31.4 M -> 10.4 M, MobileNet 20.1 M -> 17.7 M, the autoencoder 0.20 M -> 0.14 M (rfactor; 0.69 M
when vectorized along N)."""
from __future__ import annotations

import tvm
from tvm import s_tir, tirx

from edgeprune.compile.schedule import is_reduction, is_scheduled, largest_factor, try_primitive, uses


LANES, ROWS = 8, 4


def is_linux_target(target) -> bool:
    """Whether a TVM target is a Linux (Cortex-A) one, by its LLVM triple."""
    return "linux" in str(target.attrs.get("mtriple", ""))


def _inline_epilogue(sch: s_tir.Schedule, reduction) -> None:
    """Inline elementwise stages after the reduction into the kernel's output stage."""
    root = sch.get_sblock("root")
    outputs = {sch.get(b).name_hint for b in sch.get_output_blocks(root)}
    producers = {sch.get(b).name_hint for b in sch.get_producers(reduction)}
    for block in sch.get_child_blocks(root):
        name = sch.get(block).name_hint
        if name not in outputs and name not in producers and not is_reduction(sch, block):
            try_primitive(sch.compute_inline, block)


def _gathers(sch: s_tir.Schedule, block, var: tirx.Var) -> bool:
    """Whether vectors along `var` would gather: a read indexed by it, but not in its last,
    contiguous dimension (a matmul's weights laid out [N, K] along N)."""
    for read in sch.get(block).reads:
        used = [uses(r.min, var) for r in read.region]
        if any(used) and not used[-1]:
            return True
    return False


def _vectorize_reduction(sch: s_tir.Schedule, reduction, lanes: int) -> None:
    """Vectors along the reduction instead: `lanes` partial sums of contiguous elements
    (rfactor; a buffer of lanes x outputs), added up once per output."""
    k = sch.get_loops(reduction)[-1]
    lane = largest_factor(int(sch.get(k).extent), lanes)
    if lane == 1:
        return
    _, k_inner = sch.split(k, [None, lane])
    # The lanes as the partial sums' last axis (contiguous); the loops stay rows, k outer, k inner.
    partial = sch.rfactor(k_inner, len(sch.get(reduction).writes[0].region))
    k_outer, k_inner = sch.get_loops(partial)[-2:]
    sch.vectorize(k_inner)
    init = sch.decompose_reduction(partial, k_outer)
    try_primitive(sch.vectorize, sch.get_loops(init)[-1])


def _tile(sch: s_tir.Schedule, reduction, lanes: int, rows: int) -> None:
    """Split the innermost output axis into vectors (and, for a conv, the output channels into
    rows), move the reduction loops between tile and vector, and compute the epilogue per tile."""
    loops = sch.get_loops(reduction)
    kinds = [iv.iter_type for iv in sch.get(reduction).iter_vars]
    if len(loops) != len(kinds) or kinds[-1] != tirx.IterVar.CommReduce:
        return
    spatial = [loop for loop, kind in zip(loops, kinds) if kind == tirx.IterVar.DataPar]
    reduce = [loop for loop, kind in zip(loops, kinds) if kind == tirx.IterVar.CommReduce]
    if len(spatial) < 2 or kinds[:len(spatial)] != [tirx.IterVar.DataPar] * len(spatial):
        return
    if _gathers(sch, reduction, sch.get(reduction).iter_vars[len(spatial) - 1].var):
        _vectorize_reduction(sch, reduction, lanes)
        return
    inner_extent = int(sch.get(spatial[-1]).extent)
    lane = largest_factor(inner_extent, lanes)
    if lane == 1:
        return
    x_outer, x_inner = sch.split(spatial[-1], [None, lane])
    # The output-channel axis of an NCHW conv (four output axes); a matmul's one row is not split.
    channel = spatial[1] if len(spatial) == 4 else None
    row = largest_factor(int(sch.get(channel).extent), rows) if channel is not None else 1
    if row > 1:
        c_outer, c_inner = sch.split(channel, [None, row])
        order = [*spatial[:1], c_outer, *spatial[2:-1], x_outer, *reduce, c_inner, x_inner]
    else:
        order = [*spatial[:-1], x_outer, *reduce, x_inner]
    sch.reorder(*order)
    consumers = sch.get_consumers(reduction)
    epilogue = consumers[0] if len(consumers) == 1 and try_primitive(sch.reverse_compute_at, consumers[0], x_outer) else None
    if row > 1:
        sch.unroll(c_inner)
    sch.vectorize(x_inner)
    init = sch.decompose_reduction(reduction, reduce[0])
    try_primitive(sch.vectorize, sch.get_loops(init)[-1])
    if epilogue is not None and int(sch.get(sch.get_loops(epilogue)[-1]).extent) == lane:
        try_primitive(sch.vectorize, sch.get_loops(epilogue)[-1])


def _same_indices(sch: s_tir.Schedule, block) -> bool:
    """Whether every buffer the block reads is read at the element it writes (elementwise, no
    broadcast or transpose: vectors along the output are contiguous loads)."""
    written = sch.get(block).writes[0].region
    return all(len(read.region) == len(written)
               and all(r.min.same_as(w.min) for r, w in zip(read.region, written))
               for read in sch.get(block).reads)


def _vectorize_elementwise(sch: s_tir.Schedule, lanes: int) -> None:
    """An elementwise kernel (an int8 residual add, a requantize) as one loop of `lanes`-wide vectors."""
    root = sch.get_sblock("root")
    outputs = {sch.get(b).name_hint for b in sch.get_output_blocks(root)}
    for block in sch.get_child_blocks(root):
        if sch.get(block).name_hint not in outputs:
            try_primitive(sch.compute_inline, block)
    blocks = sch.get_child_blocks(root)
    if len(blocks) != 1 or not _same_indices(sch, blocks[0]):
        return
    loop = sch.fuse(*sch.get_loops(blocks[0]))
    lane = largest_factor(int(sch.get(loop).extent), lanes)
    if lane > 1:
        sch.vectorize(sch.split(loop, [None, lane])[1])


def schedule_vector(func: tirx.PrimFunc, lanes: int = LANES, rows: int = ROWS) -> tirx.PrimFunc:
    """`func` with its reduction tiled and vectorized, or, with no reduction, its elementwise
    loop vectorized; otherwise unchanged."""
    sch = s_tir.Schedule(tvm.IRModule({"main": func}))
    root = sch.get_sblock("root")
    reductions = [b for b in sch.get_child_blocks(root) if is_reduction(sch, b)]
    if not reductions:
        _vectorize_elementwise(sch, lanes)
    elif len(reductions) == 1:
        _inline_epilogue(sch, reductions[0])
        _tile(sch, reductions[0], lanes, rows)
    else:
        return func
    return sch.mod["main"].with_attrs(func.attrs) if func.attrs else sch.mod["main"]


def VectorSchedule(lanes: int = LANES, rows: int = ROWS) -> tvm.transform.Pass:
    """Module pass applying `schedule_vector` to every PrimFunc."""

    @tvm.transform.module_pass(opt_level=0, name="VectorSchedule")
    def _pass(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        return tvm.IRModule({gv: f if is_scheduled(f) else schedule_vector(f, lanes, rows)
                             for gv, f in mod.functions.items()})

    return _pass
