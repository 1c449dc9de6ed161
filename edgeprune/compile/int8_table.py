"""int8 elementwise activations as table lookups.

In a QDQ region `quantize(f(dequantize(x)))` where `f` is a chain of elementwise operators on x and
constants (LeakyRelu, PRelu, Elu, HardSigmoid, HardSwish, Sigmoid, Tanh, ...), each int8 output
depends only on the int8 input value (and on its channel where a constant, such as PRelu's slope,
varies per channel). The region itself is evaluated on the host for all 256 values (per channel):
the kernel is one load per element from a table of 256 x channels int8 values, with the float
region's own rounding, so it agrees with onnxruntime running the QDQ graph in float."""
from __future__ import annotations

import numpy as np
import tvm
from tvm import relax, te

# Operators that map each element to one element (broadcasting constants), with no float state.
ELEMENTWISE = frozenset({
    "relax.add", "relax.subtract", "relax.multiply", "relax.divide", "relax.clip", "relax.exp", "relax.negative",
    "relax.minimum", "relax.maximum", "relax.sigmoid", "relax.tanh", "relax.nn.relu", "relax.nn.leakyrelu",
    "relax.nn.prelu",
})


def _name(expr) -> str:
    return getattr(getattr(expr, "op", None), "name", "") if isinstance(expr, relax.Call) else ""


def _shape(expr) -> tuple[int, ...]:
    return tuple(int(d) for d in expr.ty.shape)


class _Region:
    """The float region under one quantize: its single dequantize and the axes its constants vary along."""

    def __init__(self, bindings: dict, rank: int):
        self.bindings, self.rank = bindings, rank
        self.dequantize = None
        self.varying: set[int] = set()

    def walk(self, expr) -> bool:
        """Whether `expr` is elementwise in one dequantized int8 tensor (recording it) and constants."""
        expr = self.bindings.get(expr, expr) if isinstance(expr, relax.Var) else expr
        if not self._uses_dequantize(expr):
            self._note_constant(expr)
            return True
        if _name(expr) == "relax.dequantize":
            if self.dequantize is not None and not self.dequantize.same_as(expr):
                return False
            self.dequantize = expr
            return str(expr.args[0].ty.dtype) == "int8" and all(isinstance(a, tvm.ir.Constant) for a in expr.args[1:])
        if _name(expr) not in ELEMENTWISE:
            return False
        if _name(expr) == "relax.nn.prelu":
            self.varying.add(int(expr.attrs.axis) % self.rank)
        return all(self.walk(arg) for arg in expr.args)

    def _uses_dequantize(self, expr) -> bool:
        if isinstance(expr, relax.Var):
            return expr in self.bindings and self._uses_dequantize(self.bindings[expr])
        if _name(expr) == "relax.dequantize":  # of an activation, not of a quantized constant (a slope)
            return not isinstance(expr.args[0], tvm.ir.Constant)
        return isinstance(expr, relax.Call) and any(self._uses_dequantize(a) for a in expr.args)

    def _note_constant(self, expr) -> None:
        """Constant operands vary the table along their broadcast axes of size > 1."""
        ty = getattr(expr, "ty", None)
        if isinstance(ty, relax.TensorType) and ty.shape is not None:
            shape = _shape(expr)
            self.varying.update(self.rank - len(shape) + i for i, d in enumerate(shape) if d > 1)


def _rebuild(expr, bindings: dict, dequantize, table_input: tvm.ir.Constant):
    """`expr` as one nested expression with the int8 tensor replaced by `table_input`."""
    expr = bindings.get(expr, expr) if isinstance(expr, relax.Var) else expr
    if isinstance(expr, relax.Call):
        if expr.same_as(dequantize):
            return relax.Call(expr.op, [table_input, *expr.args[1:]], expr.attrs, expr.ty_args)
        return relax.Call(expr.op, [_rebuild(a, bindings, dequantize, table_input) for a in expr.args],
                          expr.attrs, expr.ty_args)
    return expr


def _evaluate(expr) -> np.ndarray:
    """A constant Relax expression computed on the host."""
    builder = relax.BlockBuilder()
    with builder.function("main", []):
        builder.emit_func_output(builder.emit(expr))
    executable = tvm.compile(relax.transform.LegalizeOps()(builder.get()), target="llvm")
    return relax.VirtualMachine(executable, tvm.cpu())["main"]().numpy()


def region_table(quantize: relax.Call, bindings: dict) -> tuple[relax.Expr, np.ndarray] | None:
    """(int8 input, table) of a `quantize` call over an elementwise region of one per-tensor
    quantized input, else None. The table has shape (256, d1, ..., dn): d_i is the input's size on
    the axes constants vary along, else 1."""
    shape = _shape(quantize)
    region = _Region(bindings, len(shape))
    if not region.walk(quantize.args[0]) or region.dequantize is None:
        return None
    x = region.dequantize.args[0]
    per_tensor = all(a.value.numpy().size == 1 for a in (*quantize.args[1:3], *region.dequantize.args[1:3]))
    if _shape(x) != shape or 0 in region.varying or not per_tensor:
        return None
    table_shape = (256, *(shape[a] if a in region.varying else 1 for a in range(1, len(shape))))
    values = np.arange(-128, 128, dtype=np.int8).reshape((256,) + (1,) * (len(shape) - 1))
    table_input = relax.const(np.ascontiguousarray(np.broadcast_to(values, table_shape)))
    table = _evaluate(relax.Call(quantize.op, [_rebuild(quantize.args[0], bindings, region.dequantize, table_input),
                                               *quantize.args[1:]], quantize.attrs, quantize.ty_args))
    return x, table.astype(np.int8)


def lookup(x: te.Tensor, table: te.Tensor) -> te.Tensor:
    """Each int8 element replaced by its table entry: table[element + 128, channel indices...]."""
    varying = [int(d) > 1 for d in table.shape[1:]]
    return te.compute(x.shape, lambda *i: table[(x[i].astype("int32") + 128,
                                                 *(i[a + 1] if v else 0 for a, v in enumerate(varying)))],
                      name="table_lookup")
