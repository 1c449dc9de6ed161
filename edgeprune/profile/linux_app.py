"""The `edgeprune run` application of Linux boards (targets/linux/ep_main_linux.c), wherever it
runs (under qemu-user here, or on a board over SSH): its build, and what a fatal signal means
(its files and report lines: `run_app`)."""
from __future__ import annotations

import signal
from pathlib import Path
from typing import TYPE_CHECKING

from edgeprune.errors import DeviceError, EdgepruneError
from edgeprune.profile.run_app import tail
from edgeprune.targets import Target, load_target

if TYPE_CHECKING:
    from edgeprune.compile.api import CompiledModel


class IllegalInstructionError(DeviceError):
    """The executable uses an instruction the core it runs on does not have (SIGILL)."""


def linux_build(folder: Path, board: str | None, device: str) -> tuple[CompiledModel, Target]:
    """The compiled-model folder a Linux-board device runs, and its board (`board`, or the one it
    was compiled for); an error if that is a bare-metal board or the executable is missing."""
    from edgeprune.compile.api import CompiledModel

    model = CompiledModel.load(folder)
    target = load_target(board or model.manifest["board"])
    if target.family != "linux":
        raise EdgepruneError(f"{device} runs Linux (Cortex-A) boards; {target.name} is bare metal "
                             f"(use qemu:{target.name} or serial://)")
    if not model.elf.is_file():
        raise EdgepruneError(f"{folder} has no firmware.elf; compile the model for {target.name} again")
    return model, target


def signal_error(target: Target, core: str, number: int, text: str) -> DeviceError:
    """The error for an executable killed by signal `number` on `core` (a core name, or where
    the board is); SIGILL says which features the build assumed."""
    if number == signal.SIGILL:
        features = ", ".join([target.llvm.get("mcpu", target.cpu), *target.llvm.get("mattr", [])])
        return IllegalInstructionError(
            f"the executable stopped with SIGILL (illegal instruction) on {core}: it uses an "
            f"instruction {core} does not have. It was built for {target.name} ({features}); compile "
            f"for a board with this core, or run it on a core with those features"
        )
    name = signal.Signals(number).name if number in signal.valid_signals() else f"signal {number}"
    return DeviceError(f"the executable on {core} was killed by {name}; last output:\n{tail(text)}")
