"""The execution plan: the kernel calls of the memory-planned Relax `main`, in order, with every
argument resolved to a model input/output, a weight, or an offset in one static arena.

Relax's StaticPlanBlockMemory says which tensors exist and which are views of one another;
`place_plan` then gives every tensor its arena offset from the tensors' lifetimes (`arena.py`),
optionally with the model's inputs and outputs in the arena and with in-place layers. The
activation liveness lower bound (the most bytes that are live at once) is computed beside it so
the plan's overhead is visible."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import tvm
from tvm import relax

from edgeprune.compile import arena
from edgeprune.compile.patches import STAGE_KERNEL
from edgeprune.compile.sources import step_sources
from edgeprune.errors import UnsupportedOpError

ARENA_ALIGN = 16


@dataclass(frozen=True)
class TensorRef:
    """Where a kernel argument lives: kind is 'input', 'output', 'weight' or 'arena'."""

    kind: str
    index: int  # input/output/weight number, or byte offset in the arena
    nbytes: int
    dtype: str
    shape: tuple[int, ...]
    tensor: int = -1  # identity of the allocation (views share it), for liveness


@dataclass
class Step:
    kernel: str
    args: list[TensorRef]
    source: str = ""  # the source model's operators it computes (`sources`), if known


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    inputs: list[TensorRef] = field(default_factory=list)
    outputs: list[TensorRef] = field(default_factory=list)
    weights: list[np.ndarray] = field(default_factory=list)
    arena_bytes: int = 0
    liveness_bound_bytes: int = 0
    io_in_arena: bool = False
    input_offsets: list[int] = field(default_factory=list)  # arena offsets of the inputs (io_in_arena)
    output_offsets: list[int] = field(default_factory=list)
    inplace: list[tuple[int, int]] = field(default_factory=list)  # (step, argument) its output overwrites
    workspace_slots: dict[int, tuple[int, int]] = field(default_factory=dict)  # step -> (arena offset, bytes)
    buffers: list[arena.Buffer] = field(default_factory=list)  # the placed arena regions

    def timeline(self, step_labels: list[str]) -> dict:
        """The arena over the steps, for the memory report: each buffer's offset, bytes, the steps
        it lives over (-1: before the first, len(steps): after the last) and what it holds (the
        model's inputs and outputs, and the layers writing it, by `step_labels`)."""
        writer: dict = {}
        for t, step in enumerate(self.steps):
            for ref in step.args:
                writer.setdefault(tensor_key(ref), f"{t} {step_labels[t]}")
        names = {("input", i): f"input {i}" for i in range(len(self.inputs))}
        names.update({("output", i): f"output {i}" for i in range(len(self.outputs))})
        names.update({("workspace", t): f"{t} {'patch arena' if self.steps[t].kernel == STAGE_KERNEL else 'workspace'}"
                      for t in self.workspace_slots})
        return {"steps": len(self.steps), "arena_bytes": self.arena_bytes,
                "liveness_bound_bytes": self.liveness_bound_bytes,
                "buffers": [{"offset": b.offset, "bytes": b.nbytes, "first": b.first, "last": b.last,
                             "holds": [names.get(k) or writer[k] for k in b.keys]}
                            for b in sorted(self.buffers, key=lambda b: (b.first, b.offset))]}

    @property
    def io_bytes_outside_arena(self) -> int:
        """Bytes of the input and output buffers kept beside the arena."""
        return 0 if self.io_in_arena else sum(r.nbytes for r in self.inputs + self.outputs)


def align(n: int) -> int:
    """`n` bytes rounded up to the arena's (and the device workspace allocator's) alignment."""
    return (n + ARENA_ALIGN - 1) // ARENA_ALIGN * ARENA_ALIGN


def _tensor_type(expr) -> tuple[str, tuple[int, ...], int]:
    ty = expr.ty
    shape = tuple(int(s) for s in ty.shape)
    dtype = str(ty.dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    return dtype, shape, nbytes


def _op_name(call) -> str:
    op = call.op
    if isinstance(op, relax.ExternFunc):
        return op.global_symbol
    return getattr(op, "name", None) or getattr(op, "name_hint", str(op))


class _Planner:
    def __init__(self, main: relax.Function, sources: list[tuple[str, str]]):
        self.main = main
        self.sources = sources  # (kernel, labels) per kernel call, as recorded at fusion
        self.plan = Plan()
        self.refs: dict[relax.Var, TensorRef] = {}
        self.weight_index: list[tuple[object, int]] = []  # (constant, index): kept alive, compared by identity
        self.unplanned: list[relax.Var] = []  # tensors Relax allocated outside the plan
        self.tuples: dict[relax.Var, list] = {}  # a multi-output model's returned tuple: its fields
        for i, param in enumerate(main.params):
            dtype, shape, nbytes = _tensor_type(param)
            self.refs[param] = TensorRef("input", i, nbytes, dtype, shape)
            self.plan.inputs.append(self.refs[param])

    def run(self) -> Plan:
        body = self.main.body
        for block in body.blocks:
            for binding in block.bindings:
                self._binding(binding.var, binding.value)
        returned = body.body
        fields = list(returned.fields) if isinstance(returned, relax.Tuple) else self.tuples.get(returned, [returned])
        self._place_outputs(fields)
        return place_plan(self.plan)

    def _binding(self, var: relax.Var, value) -> None:
        if isinstance(value, relax.Var):
            self.refs[var] = self.refs[value]
            return
        if isinstance(value, relax.Tuple):
            self.tuples[var] = list(value.fields)
            return
        if not isinstance(value, relax.Call):
            raise UnsupportedOpError(f"the planned graph binds {type(value).__name__} to {var.name}")
        name = _op_name(value)
        if name == "relax.memory.alloc_tensor":  # its offset comes from place_plan; index names it till then
            dtype, shape, nbytes = _tensor_type(var)
            self.refs[var] = TensorRef("arena", len(self.refs), nbytes, dtype, shape, len(self.refs))
        elif name == "relax.builtin.alloc_tensor":
            dtype, shape, nbytes = _tensor_type(var)
            self.refs[var] = TensorRef("unplanned", len(self.unplanned), nbytes, dtype, shape)
            self.unplanned.append(var)
        elif name in ("relax.reshape", "vm.builtin.reshape"):  # zero-copy views
            source = self.refs[value.args[0]]
            dtype, shape, nbytes = _tensor_type(var)
            self.refs[var] = TensorRef(source.kind, source.index, nbytes, dtype, shape, source.tensor)
        elif name in ("relax.memory.alloc_storage", "relax.memory.kill_storage", "relax.memory.kill_tensor",
                      "relax.null_value"):
            return
        elif isinstance(value.op, relax.GlobalVar):
            self.plan.steps.append(Step(value.op.name_hint, [self._arg(a) for a in value.args],
                                        self._source(value.op.name_hint)))
        else:
            raise UnsupportedOpError(
                f"operation {name} (binding {var.name}) has no bare-metal lowering; "
                "only kernel calls, planned allocations and reshapes can run on the device"
            )

    def _source(self, kernel: str) -> str:
        """The labels recorded for the next call of `kernel` (calls dropped since are skipped)."""
        while self.sources:
            recorded, labels = self.sources.pop(0)
            if recorded == kernel:
                return labels
        return ""

    def _arg(self, arg) -> TensorRef:
        if isinstance(arg, tvm.ir.GenericConst):
            dtype, shape, nbytes = _tensor_type(arg)
            return TensorRef("weight", self._weight(arg), nbytes, dtype, shape)
        return self.refs[arg]

    def _weight(self, constant) -> int:
        """The weight number of a constant; the same constant object is stored once (Python ids of
        TVM wrappers are not stable, so identity is asked of TVM)."""
        for known, index in self.weight_index:
            if known.same_as(constant):
                return index
        self.weight_index.append((constant, len(self.plan.weights)))
        self.plan.weights.append(constant.value.numpy())
        return len(self.plan.weights) - 1

    def _place_outputs(self, returned_vars: list[relax.Var]) -> None:
        """Returned tensors are written straight into the output slots; any other tensor Relax left
        unplanned is an arena tensor like the planned ones."""
        outputs = {}
        for i, var in enumerate(returned_vars):
            ref = self.refs[var]
            outputs[(ref.kind, ref.index)] = TensorRef("output", i, ref.nbytes, ref.dtype, ref.shape)
            self.plan.outputs.append(outputs[(ref.kind, ref.index)])
        for step in self.plan.steps:
            for j, ref in enumerate(step.args):
                if (ref.kind, ref.index) in outputs:
                    step.args[j] = outputs[(ref.kind, ref.index)]
                elif ref.kind == "unplanned":
                    step.args[j] = TensorRef("arena", -1 - ref.index, ref.nbytes, ref.dtype, ref.shape, -1 - ref.index)


def build_plan(mod) -> Plan:
    """The execution plan of the memory-planned Relax module's `main` (inputs and outputs beside
    the arena, no in-place layers; `place_plan` places it again with other choices)."""
    return _Planner(mod["main"], step_sources(mod)).run()


Aliases = Callable[[Step, int], list[int]]  # (step, its written argument) -> arguments that one may overwrite


def tensor_key(ref: TensorRef) -> tuple:
    """What identifies an argument's tensor for liveness: its allocation, or its input/output/weight number."""
    return ("arena", ref.tensor) if ref.kind == "arena" else (ref.kind, ref.index)


def place_plan(plan: Plan, io_in_arena: bool = False, aliases: Aliases | None = None,
               workspace: list[int] | None = None) -> Plan:
    """Give every arena tensor its offset (in place): with `io_in_arena` the model's inputs and
    outputs get arena slots too (reused once dead); `aliases` names, per step, the arguments its
    output may overwrite, taken when that argument dies at the step; `workspace`, the scratch bytes
    each step's kernel takes, puts each kernel's workspace in the arena for its step alone."""
    kinds = {"arena", "input", "output"} if io_in_arena else {"arena"}
    args = [[(tensor_key(r), r.nbytes) for r in step.args if r.kind in kinds] for step in plan.steps]
    scratch = {t: nbytes for t, nbytes in enumerate(workspace or []) if nbytes}
    for t, nbytes in scratch.items():
        args[t].append((("workspace", t), nbytes))
    io = ([(("input", i), r.nbytes) for i, r in enumerate(plan.inputs)],
          [(("output", i), r.nbytes) for i, r in enumerate(plan.outputs)]) if io_in_arena else ([], [])
    buffers = arena.lifetimes(args, *io)
    plan.inplace = []
    for t, step in enumerate(plan.steps):
        written = [j for j, r in enumerate(step.args) if r.kind in kinds and buffers[tensor_key(r)].first == t]
        if aliases is None or len(written) != 1:
            continue
        out = tensor_key(step.args[written[0]])
        for j in aliases(step, written[0]):
            source = tensor_key(step.args[j])
            if source in buffers and buffers[source].last == t and buffers[source] is not buffers[out]:
                arena.merge(buffers, source, out)
                plan.inplace.append((t, j))
                break
    plan.buffers = arena.distinct(buffers)
    plan.arena_bytes = arena.place(plan.buffers, align)
    plan.liveness_bound_bytes = arena.liveness_bound(plan.buffers, len(plan.steps))
    for step in plan.steps:
        step.args = [TensorRef("arena", buffers[tensor_key(r)].offset, r.nbytes, r.dtype, r.shape, r.tensor)
                     if r.kind == "arena" else r for r in step.args]
    plan.io_in_arena = io_in_arena
    plan.workspace_slots = {t: (buffers[("workspace", t)].offset, nbytes) for t, nbytes in scratch.items()}
    plan.input_offsets = [buffers[k].offset for k, _ in io[0]]
    plan.output_offsets = [buffers[k].offset for k, _ in io[1]]
    return plan
