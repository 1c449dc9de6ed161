"""The execution plan: the kernel calls of the memory-planned Relax `main`, in order, with every
argument resolved to a model input/output, a weight, or an offset in one static arena.

Storages come from Relax's StaticPlanBlockMemory (tensors that share a storage reuse its bytes);
edgeprune lays the storages end to end in the arena. The activation liveness lower bound (the
most bytes that are live at once) is computed beside it so the plan's overhead is visible."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import tvm
from tvm import relax

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


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    inputs: list[TensorRef] = field(default_factory=list)
    outputs: list[TensorRef] = field(default_factory=list)
    weights: list[np.ndarray] = field(default_factory=list)
    arena_bytes: int = 0
    liveness_bound_bytes: int = 0


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
    def __init__(self, main: relax.Function):
        self.main = main
        self.plan = Plan()
        self.refs: dict[relax.Var, TensorRef] = {}
        self.storage_offset: dict[relax.Var, int] = {}
        self.storage_size: dict[relax.Var, int] = {}
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
        self.plan.arena_bytes = self._arena_end
        self.plan.liveness_bound_bytes = self._liveness_bound()
        return self.plan

    @property
    def _arena_end(self) -> int:
        return sum(self.storage_size.values())

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
        if name == "relax.memory.alloc_storage":
            size = align(int(value.args[0].values[0]))
            self.storage_offset[var] = self._arena_end
            self.storage_size[var] = size
        elif name == "relax.memory.alloc_tensor":
            dtype, shape, nbytes = _tensor_type(var)
            offset = self.storage_offset[value.args[0]] + int(value.args[1].value)
            self.refs[var] = TensorRef("arena", offset, nbytes, dtype, shape, len(self.refs))
        elif name == "relax.builtin.alloc_tensor":
            dtype, shape, nbytes = _tensor_type(var)
            self.refs[var] = TensorRef("unplanned", len(self.unplanned), nbytes, dtype, shape)
            self.unplanned.append(var)
        elif name in ("relax.reshape", "vm.builtin.reshape"):  # zero-copy views
            source = self.refs[value.args[0]]
            dtype, shape, nbytes = _tensor_type(var)
            self.refs[var] = TensorRef(source.kind, source.index, nbytes, dtype, shape, source.tensor)
        elif name in ("relax.memory.kill_storage", "relax.memory.kill_tensor", "relax.null_value"):
            return
        elif isinstance(value.op, relax.GlobalVar):
            self.plan.steps.append(Step(value.op.name_hint, [self._arg(a) for a in value.args]))
        else:
            raise UnsupportedOpError(
                f"operation {name} (binding {var.name}) has no bare-metal lowering; "
                "only kernel calls, planned allocations and reshapes can run on the device"
            )

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
        """Returned tensors are written straight into the caller's output buffers; any other
        tensor Relax left unplanned gets its own slot at the end of the arena."""
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
                    key = self.unplanned[ref.index]
                    if key not in self.storage_offset:
                        self.storage_offset[key] = self._arena_end
                        self.storage_size[key] = align(ref.nbytes)
                    step.args[j] = TensorRef(
                        "arena", self.storage_offset[key], ref.nbytes, ref.dtype, ref.shape, -1 - ref.index
                    )

    def _liveness_bound(self) -> int:
        """The most arena bytes live during any one step (a tensor lives from its first write to
        its last read): no plan can use less."""
        first: dict[int, int] = {}
        last: dict[int, int] = {}
        size: dict[int, int] = {}
        for t, step in enumerate(self.plan.steps):
            for ref in step.args:
                if ref.kind == "arena":
                    first.setdefault(ref.tensor, t)
                    last[ref.tensor] = t
                    size[ref.tensor] = max(size.get(ref.tensor, 0), ref.nbytes)
        return max(
            (sum(size[k] for k in size if first[k] <= t <= last[k]) for t in range(len(self.plan.steps))),
            default=0,
        )


def build_plan(mod) -> Plan:
    """The execution plan of the memory-planned Relax module's `main`."""
    return _Planner(mod["main"]).run()
