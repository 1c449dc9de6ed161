"""Which input of a kernel its output may overwrite (in-place layers), read from the lowered kernel.

- Element-wise kernels (residual adds, activations, requantize): the output is written by one
  store, executed exactly once per output element (its loops iterate as many times as the output
  has elements: each element is written once), and every read of the input is in that store's
  value at the same index, of the same element type. Element i of the input is then read only to
  compute element i of the output, before that element is written.
- The depthwise kernels (`dsp/depthwise.py`, `neon/depthwise.py`; batch 1, any kernel whose
  layer kind is "depthwise"): for channel c = 0, 1, ... each first copies input plane c into its
  zero-point-padded workspace plane, then writes output channels c*M .. c*M+M-1 (the NEON kernel
  stores whole rows, never past a row's end). With the output at the input's address, those writes end at byte
  (c+1)*M*OH*OW, inside the input planes 0..c already copied, if and only if M*OH*OW <= H*W:
  the output is no larger than the input.
- The DSP convolutions (`dsp/conv.py`) of stride 1 with the output as large as the input in
  pixels and no larger in bytes (C_out <= C_in): output pixel p lands on input pixel p; those
  whose windows reach above or left of their pixel run as an in-place twin that keeps a ring of
  input rows, swapped in for the steps that the plan runs in place (`take_twins`).
Reshapes are zero-copy views already (`plan.py`)."""
from __future__ import annotations

from typing import Callable

import tvm
import tvm_ffi
from tvm import tirx

from edgeprune.compile.dsp.conv import IN_PLACE, TWIN, in_place_twin
from edgeprune.compile.int8 import Layer
from edgeprune.compile.plan import Aliases, Plan, Step


def kernel_aliases(kernels: tvm.IRModule, twins: bool = False) -> Aliases:
    """For `place_plan`: the arguments of a step that its output (argument `written`) may overwrite;
    with `twins`, also the inputs of kernels that need their in-place twin (see `take_twins`). A
    step that is not one of the `kernels` (a patch stage) overwrites nothing."""
    names = {gv.name_hint for gv in kernels.functions}

    def aliases(step: Step, written: int) -> list[int]:
        return aliasable_inputs(kernels[step.kernel], step, written, twins) if step.kernel in names else []
    return aliases


def take_twins(plan: Plan, kernels: tvm.IRModule, unlowered: tvm.IRModule,
               lower: Callable[[tvm.IRModule], tvm.IRModule]) -> tvm.IRModule:
    """The steps that `plan` runs in place on a kernel with an in-place twin call the twin (named
    `<kernel>_inplace`, built from the `unlowered` kernel and lowered by `lower`); returns the
    kernels the steps now call."""
    swapped = {}
    for t, _ in plan.inplace:
        step = plan.steps[t]
        twin = in_place_twin(unlowered[step.kernel])
        if twin is not None:
            name = f"{step.kernel}_inplace"
            swapped[name] = twin.with_attr("global_symbol", name)
            step.kernel = name
    lowered = lower(tvm.IRModule(swapped)) if swapped else tvm.IRModule({})
    used = {step.kernel for step in plan.steps}
    return tvm.IRModule({gv: f for module in (kernels, lowered) for gv, f in module.functions.items()
                         if gv.name_hint in used})


def aliasable_inputs(func: tirx.PrimFunc, step: Step, written: int, twins: bool = False) -> list[int]:
    """The activation arguments of `step` (running `func`) that its argument `written` may
    overwrite; with `twins`, also where the kernel's in-place twin would run."""
    out = step.args[written]
    inputs = [j for j, r in enumerate(step.args) if j != written and r.kind != "weight"]
    layer = Layer.of(func)
    x = step.args[0]
    if layer is not None and layer.kind == "depthwise":
        return [0] if inputs[:1] == [0] and x.shape[0] == 1 and out.nbytes <= x.nbytes else []
    if layer is not None and layer.kind in ("conv", "pointwise"):
        attrs = func.attrs
        ok = bool(attrs[IN_PLACE]) if IN_PLACE in attrs else False
        # A larger output would make the shared buffer larger over the input's whole life.
        fits = inputs[:1] == [0] and x.shape[0] == 1 and out.nbytes <= x.nbytes
        return [0] if fits and (ok or (twins and TWIN in attrs)) else []
    return [j for j in inputs if step.args[j].nbytes == out.nbytes
            and _elementwise_into(func, func.params[j], func.params[written])]


def _elementwise_into(func: tirx.PrimFunc, source: tirx.Var, dest: tirx.Var) -> bool:
    """Whether every read of `source` is at the index the single store to `dest` writes."""
    sources, dests = _views(func.body, source), _views(func.body, dest)
    stores: list[tuple[tirx.BufferStore, int]] = []
    if sources is None or dests is None or not _collect_stores(func.body, dests, 1, stores) or len(stores) != 1:
        return False
    store, iterations = stores[0]
    index = store.indices[-1]
    lanes = int(index.lanes) if isinstance(index, tirx.Ramp) else 1
    elements = 1
    for extent in store.buffer.ty.shape:
        elements *= int(extent)
    if iterations * lanes != elements or not _at_base(store.buffer):
        return False
    everywhere, in_store = _loads(func.body, sources), _loads(store.value, sources)
    # Each view is used only where it is declared, loaded or stored: its address goes nowhere else.
    plain = all(_uses(func.body, v) == 1 + sum(load.source.same_as(v) for load in everywhere) for v in sources)
    return (plain and len(everywhere) == len(in_store)
            and all(load.source.ty.dtype == store.buffer.ty.dtype and _at_base(load.source)
                    and tvm_ffi.structural_equal(list(load.indices), list(store.indices)) for load in in_store))


def _at_base(buffer) -> bool:
    offset = buffer.ty.elem_offset
    return isinstance(offset, tirx.IntImm) and offset.value == 0


def _views(body, param: tirx.Var) -> list | None:
    """The buffers declared on the pointer `param`; None if `param` is used otherwise too."""
    views = []

    def on_decl(decl):
        if decl.data.same_as(param):
            views.append(decl.buffer)

    tvm_ffi.structural_walk(body, [(tirx.DeclBuffer, on_decl)], order="pre")
    return views if _uses(body, param) == len(views) else None


def _uses(node, var: tirx.Var) -> int:
    """How many times `var` occurs in `node`."""
    found = []
    tvm_ffi.structural_walk(node, [(tvm.ir.expr.Var, lambda v: found.append(v.same_as(var)) or None)], order="pre")
    return sum(found)


def _on(buffer, views: list) -> bool:
    return any(buffer.same_as(v) for v in views)


def _collect_stores(stmt, views: list, iterations: int, out: list) -> bool:
    """Stores to the `views` buffers with the loop iterations around each; False if one is
    conditional or under a loop of unknown extent or step."""
    if isinstance(stmt, tirx.SeqStmt):
        return all(_collect_stores(s, views, iterations, out) for s in stmt.seq)
    if isinstance(stmt, tirx.For):
        extent = stmt.extent.value if isinstance(stmt.extent, tirx.IntImm) else None
        step = 1 if stmt.step is None else stmt.step.value if isinstance(stmt.step, tirx.IntImm) else None
        found: list = []
        ok = _collect_stores(stmt.body, views, iterations * (extent or 1), found)
        out += found
        return ok and (not found or (extent is not None and step == 1))
    if isinstance(stmt, tirx.AttrStmt):
        return _collect_stores(stmt.body, views, iterations, out)
    if isinstance(stmt, tirx.IfThenElse):
        found = []
        _collect_stores(stmt.then_case, views, iterations, found)
        if stmt.else_case is not None:
            _collect_stores(stmt.else_case, views, iterations, found)
        return not found
    if isinstance(stmt, tirx.BufferStore) and _on(stmt.buffer, views):
        out.append((stmt, iterations))
    return True


def _loads(node, views: list) -> list:
    """The loads of the `views` buffers in `node`."""
    loads = []
    tvm_ffi.structural_walk(node, [(tvm.ir.expr.TensorLoad, lambda load: loads.append(load)
                                     if _on(load.source, views) else None)], order="pre")
    return loads
