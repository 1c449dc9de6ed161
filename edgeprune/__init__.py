"""edgeprune: prune, quantize, compile and profile neural networks for Arm devices.

The Python API mirrors the command line; heavy stages (torch, TVM) load on first use.

    import edgeprune
    model = edgeprune.compile("kws_dscnn", target="mps2-an386", out="build/kws")
    report = edgeprune.run(model)           # QEMU, checked against onnxruntime
    print(report.device.instructions, report.relative_error)
"""
from __future__ import annotations

from typing import Any


def compile(model: Any, target: str = "mps2-an386", out: str = "build/model", **options: Any):  # noqa: A001
    """Compile a model into a firmware folder (see edgeprune.compile.api.compile_model)."""
    from edgeprune.compile.api import compile_model

    return compile_model(model, target, out, **options)


def run(compiled: Any, inputs: Any = None, **options: Any):
    """Run a compiled model on QEMU and compare with onnxruntime (see edgeprune.profile.run.run)."""
    from edgeprune.profile.run import run as run_on_device

    return run_on_device(compiled, inputs, **options)


def prune(*args: Any, **kwargs: Any):
    """Prune a model (see edgeprune.prune.api.prune)."""
    from edgeprune.prune.api import prune as prune_model

    return prune_model(*args, **kwargs)


def quantize(*args: Any, **kwargs: Any):
    """int8-quantize a model with onnxruntime's static quantizer (see edgeprune.quantize.api)."""
    from edgeprune.quantize import quantize as quantize_model

    return quantize_model(*args, **kwargs)


def search(*args: Any, **kwargs: Any):
    """Hardware-aware per-layer sparsity search (see edgeprune.search.api.search)."""
    from edgeprune.search import search as search_model

    return search_model(*args, **kwargs)


def profile(compiled: Any, device: str = "qemu:mps2-an386", **options: Any):
    """Profile a compiled model on a device and store the record (see edgeprune.profile.api.profile)."""
    from edgeprune.profile.api import profile as profile_model

    return profile_model(compiled, device, **options)
