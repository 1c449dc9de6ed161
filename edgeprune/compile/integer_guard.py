"""The guard of integer-only models: once a function takes int8, no binding may compute in float."""
from __future__ import annotations

import tvm
from tvm import relax

from edgeprune.errors import UnsupportedOpError

_FLOATS = ("float16", "float32", "float64", "bfloat16")


def _dtype(expr) -> str | None:
    ty = getattr(expr, "ty", None)
    return str(ty.dtype) if isinstance(ty, relax.TensorType) else None


def float_bindings(func: relax.Function) -> list[str]:
    """'op (binding): dtype' for each binding that produces a float tensor."""
    found = []
    for block in func.body.blocks:
        for binding in block.bindings:
            dtype = _dtype(binding.var)
            if dtype in _FLOATS:
                value = binding.value
                op = getattr(getattr(value, "op", None), "name", type(value).__name__)
                found.append(f"{op} ({binding.var.name}): {dtype}")
    return found


def CheckIntegerOnly() -> tvm.transform.Pass:
    """Module pass: a model whose inputs are integers must stay integer inside; else name the ops."""

    @tvm.transform.module_pass(opt_level=0, name="CheckIntegerOnly")
    def _pass(mod: tvm.IRModule, _ctx) -> tvm.IRModule:
        main = mod["main"]
        if all(_dtype(p) not in _FLOATS for p in main.params) and any(_dtype(p) for p in main.params):
            floats = float_bindings(main)
            if floats:
                raise UnsupportedOpError(
                    "these operations have no integer lowering and would compute in float inside an int8 "
                    "model: " + "; ".join(floats[:8]) + ("; ..." if len(floats) > 8 else "")
                    + ". Supported in int8: conv2d (incl. depthwise, strided, padded), dense/Gemm/MatMul, "
                    "residual add, global average, max pool, reshape/flatten/transpose, ReLU/ReLU6/clip"
                )
        return mod

    return _pass
