"""Which input of a kernel its output may overwrite (in-place layers), read from the lowered kernel.

- Element-wise kernels (residual adds, activations, requantize): the output is written by one
  store, executed exactly once per output element (its loops iterate as many times as the output
  has elements: each element is written once), and every read of the input is in that store's
  value at the same index, of the same element type. Element i of the input is then read only to
  compute element i of the output, before that element is written.
- The DSP depthwise kernel (`dsp/depthwise.py`, batch 1): for channel c = 0, 1, ... it first
  copies input plane c into its zero-point-padded workspace plane, then writes output channels
  c*M .. c*M+M-1. With the output at the input's address, those writes end at byte
  (c+1)*M*OH*OW, inside the input planes 0..c already copied, if and only if M*OH*OW <= H*W:
  the output is no larger than the input.
Reshapes are zero-copy views already (`plan.py`)."""
from __future__ import annotations

import tvm
import tvm_ffi
from tvm import tirx

from edgeprune.compile.int8 import Layer
from edgeprune.compile.plan import Aliases, Step

_ADDRESS_OF = tvm.ir.Op.get("tirx.address_of")


def kernel_aliases(kernels: tvm.IRModule) -> Aliases:
    """For `place_plan`: the arguments of a step that its output (argument `written`) may overwrite."""
    def aliases(step: Step, written: int) -> list[int]:
        return aliasable_inputs(kernels[step.kernel], step, written)
    return aliases


def aliasable_inputs(func: tirx.PrimFunc, step: Step, written: int) -> list[int]:
    """The activation arguments of `step` (running `func`) that its argument `written` may overwrite."""
    out = step.args[written]
    inputs = [j for j, r in enumerate(step.args) if j != written and r.kind != "weight"]
    layer = Layer.of(func)
    if layer is not None and layer.kind == "depthwise":
        x = step.args[0]
        return [0] if inputs[:1] == [0] and x.shape[0] == 1 and out.nbytes <= x.nbytes else []
    return [j for j in inputs if step.args[j].nbytes == out.nbytes
            and _elementwise_into(func, func.params[j], func.params[written])]


def _elementwise_into(func: tirx.PrimFunc, source: tirx.Var, dest: tirx.Var) -> bool:
    """Whether every read of `source` is at the index the single store to `dest` writes."""
    stores: list[tuple[tirx.BufferStore, int]] = []
    if not _collect_stores(func.body, dest, 1, stores) or len(stores) != 1:
        return False
    store, iterations = stores[0]
    lanes = store.value.dtype.lanes if hasattr(store.value.dtype, "lanes") else 1
    elements = 1
    for extent in store.buffer.shape:
        elements *= int(extent)
    if iterations * lanes != elements or store.buffer.elem_offset != 0:
        return False
    everywhere, in_store, escapes = [], [], []
    _reads(func.body, source, everywhere, escapes)
    _reads(store.value, source, in_store, escapes)
    return (not escapes and len(everywhere) == len(in_store)
            and all(load.buffer.dtype == store.buffer.dtype and load.buffer.elem_offset == 0
                    and tvm.ir.structural_equal(list(load.indices), list(store.indices)) for load in in_store))


def _collect_stores(stmt, dest: tirx.Var, iterations: int, out: list) -> bool:
    """Stores to `dest` with the loop iterations around each; False if one is conditional or under
    a loop of unknown extent."""
    if isinstance(stmt, tirx.SeqStmt):
        return all(_collect_stores(s, dest, iterations, out) for s in stmt.seq)
    if isinstance(stmt, tirx.For):
        extent = stmt.extent.value if isinstance(stmt.extent, tirx.IntImm) else None
        step = 1 if stmt.step is None else stmt.step.value if isinstance(stmt.step, tirx.IntImm) else None
        found: list = []
        ok = _collect_stores(stmt.body, dest, iterations * (extent or 1), found)
        out += found
        return ok and (not found or (extent is not None and step == 1))
    if isinstance(stmt, tirx.AttrStmt):
        return _collect_stores(stmt.body, dest, iterations, out)
    if isinstance(stmt, tirx.IfThenElse):
        found = []
        _collect_stores(stmt.then_case, dest, iterations, found)
        if stmt.else_case is not None:
            _collect_stores(stmt.else_case, dest, iterations, found)
        return not found
    if isinstance(stmt, tirx.BufferStore) and stmt.buffer.data.same_as(dest):
        out.append((stmt, iterations))
    return True


def _reads(node, source: tirx.Var, loads: list, escapes: list) -> None:
    """Loads of `source`'s buffers into `loads`; any other use of the pointer (address taken,
    passed to a call) into `escapes`."""
    def on_call(call):
        if call.op.same_as(_ADDRESS_OF) and any(
                isinstance(a, tirx.BufferLoad) and a.buffer.data.same_as(source) for a in call.args):
            escapes.append(call)

    def on_load(load):
        if load.buffer.data.same_as(source):
            loads.append(load)

    def on_var(var):
        if var.same_as(source):
            escapes.append(var)

    tvm_ffi.structural_walk(node, [(tirx.Buffer, lambda _b: tvm_ffi.WalkResult.SKIP), (tirx.BufferLoad, on_load),
                                   (tvm.ir.expr.Call, on_call), (tirx.Var, on_var)], order="pre")
