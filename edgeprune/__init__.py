"""edgeprune: prune, quantize, compile and profile neural networks for Arm devices.

The Python API mirrors the command line; each stage is a callable package whose heavy parts
(torch, TVM) load on first use.

    import edgeprune
    model = edgeprune.compile("kws_dscnn", target="mps2-an386", out="build/kws")
    report = edgeprune.run(model)           # QEMU, checked against onnxruntime
    record = edgeprune.profile(model, "qemu:mps2-an386", runs=5)
"""
from __future__ import annotations

from typing import Any

from edgeprune import compile, profile, prune, quantize, search  # noqa: A004 - callable stage packages

__all__ = ["compile", "profile", "prune", "quantize", "run", "search", "zoo"]


def run(compiled: Any, inputs: Any = None, **options: Any):
    """Run a compiled model once on QEMU, no store, and compare with the reference (see edgeprune.profile.run.run)."""
    from edgeprune.profile.run import run as run_on_device

    return run_on_device(compiled, inputs, **options)


def zoo():
    """The zoo models as rows: name, source architecture, input shape, MACs, parameters, default data."""
    from edgeprune.models.catalog import entries

    return entries()
