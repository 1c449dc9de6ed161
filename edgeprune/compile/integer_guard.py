"""The guard of integer-only models: once a function takes int8, no binding may compute in float."""
from __future__ import annotations

import tvm
from tvm import relax

from edgeprune.compile.frontend import SUPPORTED_OPS
from edgeprune.compile.sources import binding_label
from edgeprune.errors import UnsupportedOpError

_FLOATS = ("float16", "float32", "float64", "bfloat16")


def _dtype(expr) -> str | None:
    ty = getattr(expr, "ty", None)
    return str(ty.dtype) if isinstance(ty, relax.TensorType) else None


def float_bindings(mod: tvm.IRModule) -> list[str]:
    """'op (source operator): dtype' for each binding of `main` that produces a float tensor."""
    found = []
    for block in mod["main"].body.blocks:
        for binding in block.bindings:
            dtype = _dtype(binding.var)
            if dtype in _FLOATS:
                value = binding.value
                op = getattr(getattr(value, "op", None), "name", type(value).__name__)
                found.append(f"{op} ({binding_label(binding.var, mod)}): {dtype}")
    return found


def is_integer_model(mod: tvm.IRModule) -> bool:
    """True when `main` takes only integer tensors (an int8 model after edge stripping)."""
    params = [_dtype(p) for p in mod["main"].params]
    return bool(params) and all(d is not None and d not in _FLOATS for d in params)


def check_integer_only(mod: tvm.IRModule) -> tvm.IRModule:
    """An integer model must stay integer inside; otherwise name the float operations."""
    floats = float_bindings(mod) if is_integer_model(mod) else []
    if floats:
        raise UnsupportedOpError(
            "these operations have no integer lowering and would compute in float inside an int8 "
            "model: " + "; ".join(floats[:8]) + ("; ..." if len(floats) > 8 else "")
            + ". Supported in int8 (ONNX operators): " + ", ".join(op for op, int8 in SUPPORTED_OPS.items() if int8)
        )
    return mod
