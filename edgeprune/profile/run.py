"""`edgeprune run`: a profile with one run and no store. The board's family picks the device:
`qemu:BOARD?transport=semihosting` (the compiled firmware.elf under qemu-system) for bare-metal
boards, `qemu-user:BOARD` for Linux (Cortex-A) ones."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeprune.compile.api import CompiledModel
from edgeprune.errors import EdgepruneError
from edgeprune.profile.api import ProfileReport, profile
from edgeprune.targets import load_target


def run_device(board: str, cpu: str | None = None) -> str:
    """The device URL `edgeprune run` measures `board` on (`cpu`: another core, Linux boards only)."""
    if load_target(board).family == "linux":
        return f"qemu-user:{board}" + (f"?cpu={cpu}" if cpu else "")
    if cpu is not None:
        raise EdgepruneError(f"choosing another core (cpu={cpu!r}) works for qemu-user boards only, not {board}")
    return f"qemu:{board}?transport=semihosting"


def run(
    compiled: str | Path | CompiledModel, inputs: list[np.ndarray] | None = None, *,
    runs: int = 1, seed: int = 0, timeout: float = 120.0, cpu: str | None = None,
) -> ProfileReport:
    """Run the firmware on QEMU (bare metal: `-icount shift=0`; Linux boards: qemu-user with the
    instruction-counting plugin, optionally on another core `cpu`) and compare with the reference
    (onnxruntime, or TFLM's interpreter for a model compiled from a `.tflite`); `timeout`: seconds
    before QEMU is stopped. Nothing is stored."""
    model = compiled if isinstance(compiled, CompiledModel) else CompiledModel.load(compiled)
    device = run_device(model.manifest["board"], cpu)
    return profile(model, device, runs=runs, inputs=inputs, seed=seed, store=False, run_timeout=timeout)
