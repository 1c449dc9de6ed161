"""Arena placement with the inputs, outputs and kernel workspace in the arena and in-place layers:
tensors live at the same time share bytes only where a layer overwrites an input that dies with
it, the bound counts aliased tensors once, and the device computes the same outputs bit for bit."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

import tvm
from tvm.script import tirx as T

from edgeprune.compile import arena, passes
from edgeprune.compile.api import _kernel_module, _place, plan_model
from edgeprune.compile.inplace import _elementwise_into, kernel_aliases
from edgeprune.compile.plan import align, place_plan
from edgeprune.compile.qdq_edges import strip_qdq_edges
from edgeprune.compile.schedule import SCHEDULED
from edgeprune.compile.workspace import workspace_bytes
from edgeprune.targets import load_target

TARGET = load_target("mps2-an386").llvm_target()


def test_greedy_placement_reaches_the_bound_of_a_chain_and_keeps_live_buffers_apart():
    # a -> b -> c -> d, with a also read by the last step (a residual): sizes in bytes.
    steps = [[("a", 1000), ("b", 3000)], [("b", 3000), ("c", 2000)], [("c", 2000), ("a", 1000), ("d", 500)]]
    buffers = arena.distinct(arena.lifetimes(steps, [], []))
    size = arena.place(buffers, align)
    assert arena.liveness_bound(buffers, len(steps)) == 1000 + 3000 + 2000
    assert size == align(1000) + align(3000) + align(2000)
    for x in buffers:
        for y in buffers:
            if x is not y and x.overlaps_in_time(y):
                assert x.offset + x.nbytes <= y.offset or y.offset + y.nbytes <= x.offset


def test_inputs_live_before_the_first_step_and_outputs_after_the_last():
    buffers = arena.lifetimes([[("in", 64), ("t", 32)], [("t", 32), ("out", 16)]], [("in", 64)], [("out", 16)])
    assert (buffers["in"].first, buffers["in"].last) == (-1, 0)
    assert (buffers["out"].first, buffers["out"].last) == (1, 2)
    arena.merge(buffers, "t", "out")  # out overwrites t
    assert buffers["out"] is buffers["t"] and (buffers["t"].first, buffers["t"].last, buffers["t"].nbytes) == (0, 2, 32)
    assert arena.liveness_bound(arena.distinct(buffers), 2) == 96


@T.prim_func
def _same_index(x: T.Buffer((64,), "int8"), y: T.Buffer((64,), "int8")):
    for i in range(64):
        y[i] = x[i] + T.int8(1)


@T.prim_func
def _vectorized(x: T.Buffer((64,), "int8"), y: T.Buffer((64,), "int8")):
    for o in range(16):
        for i in T.vectorized(4):
            y[o * 4 + i] = x[o * 4 + i] + T.int8(1)


@T.prim_func
def _neighbour(x: T.Buffer((64,), "int8"), y: T.Buffer((63,), "int8")):
    for i in range(63):
        y[i] = x[i + 1]


@T.prim_func
def _written_twice(x: T.Buffer((64,), "int8"), y: T.Buffer((64,), "int8")):
    for k, i in T.grid(2, 64):  # the second pass would read x[i] already overwritten
        y[i] = x[i] + T.Cast("int8", k)


@T.prim_func
def _two_stores(x: T.Buffer((64,), "int8"), y: T.Buffer((64,), "int8")):
    for i in range(64):
        y[i] = x[i]
    for i in range(64):
        y[i] = y[i] + x[i]


@pytest.mark.parametrize("func, safe", [(_same_index, True), (_vectorized, True), (_neighbour, False),
                                        (_written_twice, False), (_two_stores, False)])
def test_element_wise_in_place_needs_one_store_per_element_at_the_read_index(func, safe):
    mod = tvm.IRModule({"kernel": func.with_attr("global_symbol", "kernel").with_attr(SCHEDULED, True)})
    lowered = passes.run_passes(mod, passes.KERNEL_PASSES, TARGET)["kernel"]
    assert _elementwise_into(lowered, lowered.params[0], lowered.params[1]) is safe


def _placed(quantized, name: str, **choices):
    model, *_ = strip_qdq_edges(onnx.load(quantized(name)))
    graph, plan = plan_model(model, TARGET)
    kernels = passes.run_passes(_kernel_module(graph, plan), passes.KERNEL_PASSES, TARGET)
    return place_plan(plan, choices.get("io_in_arena", True), kernel_aliases(kernels) if choices.get("inplace", True)
                      else None)


def _check_sharing(plan) -> None:
    """Buffers live at the same step never share bytes; the tensors of one buffer meet only at the
    step where one is written over the other (an in-place layer)."""
    for x in plan.buffers:
        for y in plan.buffers:
            if x is not y and x.overlaps_in_time(y):
                assert x.offset + x.nbytes <= y.offset or y.offset + y.nbytes <= x.offset, (x, y)
    assert all(b.offset + b.nbytes <= plan.arena_bytes for b in plan.buffers)
    assert plan.liveness_bound_bytes <= plan.arena_bytes


@pytest.mark.parametrize("name, kinds, kept_bytes", [("kws_dscnn", ("depthwise_conv2d_int8_dsp", "conv2d_int8_dsp"), 8000),
                                                     ("ic_resnet8", ("add_int8",), 16384)])
def test_in_place_layers_overwrite_a_dying_input(quantized, name, kinds, kept_bytes):
    plan = _placed(quantized, name)
    _check_sharing(plan)
    taken = [plan.steps[t] for t, _ in plan.inplace]
    assert {k for k in kinds if any(s.kernel.startswith(k) for s in taken)} == set(kinds)
    assert all(s.kernel.startswith(kinds) for s in taken)
    for t, j in plan.inplace:  # the output sits exactly on the input it overwrites
        assert plan.steps[t].args[j].index == plan.steps[t].args[-1].index
    first = next(t for t, _ in plan.inplace)
    assert plan.steps[first].args[-1].nbytes == kept_bytes
    # Inputs and outputs have slots in the arena; a plan without either has them beside it.
    assert len(plan.input_offsets) == len(plan.inputs) and plan.io_bytes_outside_arena == 0
    beside = _placed(quantized, name, io_in_arena=False, inplace=False)
    assert beside.inplace == [] and beside.io_bytes_outside_arena == sum(r.nbytes for r in plan.inputs + plan.outputs)


def test_in_place_adds_lower_the_bound_where_they_peak(quantized):
    # ResNet-8's first residual add holds three 16 KiB tensors without aliasing, two with it; the
    # peak (three tensors around the second conv) stays without the convolutions' in-place twins.
    with_alias, without = _placed(quantized, "ic_resnet8"), _placed(quantized, "ic_resnet8", inplace=False)
    add = next(t for t, s in enumerate(with_alias.steps) if s.kernel == "add_int8")

    def live(plan, t):
        return sum(b.nbytes for b in plan.buffers if b.live_at(t))

    assert (live(without, add), live(with_alias, add)) == (3 * 16384, 2 * 16384)
    assert with_alias.liveness_bound_bytes == without.liveness_bound_bytes == 3 * 16384


def test_a_conv_runs_in_place_only_on_its_own_pixels_and_no_larger(quantized):
    # KWS: the 1x1 convolutions (64->64, stride 1) overwrite their input; the first one (10x4,
    # stride 2) and the dense and mean layers never do.
    plan = _placed(quantized, "kws_dscnn")
    convs = [plan.steps[t] for t, _ in plan.inplace if plan.steps[t].kernel.startswith("conv2d")]
    assert len(convs) == 4
    for step in convs:
        x, y = step.args[0], step.args[-1]
        assert x.shape[2:] == y.shape[2:] and y.shape[1] <= x.shape[1]
    assert not any(plan.steps[t].kernel.startswith(("dense", "mean")) for t, _ in plan.inplace)
    assert 0 not in [t for t, _ in plan.inplace]


def test_in_place_convolutions_take_the_third_tensor_off_the_resnet_peak(quantized):
    # ResNet-8's second conv of each block overwrites the first's output (its input) with its
    # in-place twin; the twin keeps two input rows of all channels (16 x 32 x 2 B at 32x32) in
    # its workspace beside the kernel's columns, so the peak is the block input, that one tensor
    # and the ring.
    model, *_ = strip_qdq_edges(onnx.load(quantized("ic_resnet8")))
    graph, plan = plan_model(model, TARGET)
    unlowered = _kernel_module(graph, plan)
    lower = lambda kernels: passes.run_passes(kernels, passes.KERNEL_PASSES, TARGET)  # noqa: E731
    plain = workspace_bytes(lower(unlowered))
    kernels, workspace = _place(plan, lower(unlowered), unlowered, lower, True, True, True)
    _check_sharing(plan)
    twins = [plan.steps[t].kernel for t, _ in plan.inplace if plan.steps[t].kernel.endswith("_inplace")]
    assert len(twins) == 3 and set(twins) <= {gv.name_hint for gv in kernels.functions}
    assert [workspace[k] - plain[k.removesuffix("_inplace")] for k in twins] == [16 * 32 * 2, 32 * 16 * 2, 64 * 8 * 2]
    assert plan.liveness_bound_bytes == plan.arena_bytes == 2 * 16384 + 1024


@pytest.mark.qemu
@pytest.mark.parametrize("name", ["kws_dscnn", "ic_resnet8"])
def test_in_place_and_io_in_arena_are_bit_exact_on_qemu(quantized, compiled, host_reference, name):
    from edgeprune.profile.run import run

    default = compiled(quantized(name))
    beside = compiled(quantized(name), io_in_arena=False, inplace=False, workspace_in_arena=False)
    assert default.manifest["options"]["io_in_arena"] and not beside.manifest["options"]["io_in_arena"]
    assert default.manifest["memory"]["inplace_steps"] and not beside.manifest["memory"]["inplace_steps"]
    twins = [s["kernel"] for s in default.manifest["steps"] if s["kernel"].endswith("_inplace")]
    assert len(twins) == {"kws_dscnn": 0, "ic_resnet8": 3}[name]  # IC: convolutions keeping a ring of rows
    x = np.random.default_rng(5).integers(-128, 128, default.manifest["inputs"][0]["shape"]).astype(np.int8)
    # Two runs: the second must see the input again although the first overwrote its slot.
    first, second = run(default, [x], runs=2), run(beside, [x], runs=2)
    assert np.array_equal(first.measurement.outputs[0], second.measurement.outputs[0])
    assert np.array_equal(first.measurement.outputs[0], host_reference(default, [x])[0])
    memory, apart = default.manifest["memory"], beside.manifest["memory"]
    assert memory["saved_bytes"] >= sum(r["bytes"] for r in default.manifest["inputs"])
    assert memory["baseline_bytes"] == apart["arena_bytes"] + apart["io_outside_arena_bytes"] + apart["workspace_bytes"]
    # The workspace is arena regions: the ELF has no workspace buffer, and RAM drops by the saving.
    assert memory["workspace_outside_arena_bytes"] == default.manifest["elf"]["ram"]["workspace"] == 0
    assert default.manifest["elf"]["ram"]["arena"] == memory["arena_bytes"]
    saved_in_elf = beside.manifest["elf"]["ram_total"] - default.manifest["elf"]["ram_total"]
    assert saved_in_elf >= memory["saved_bytes"]
