"""The `edgeprune run` application of Linux boards (targets/linux/ep_main_linux.c), wherever it
runs (under qemu-user here, or on a board over SSH): the input file it reads, the report it
prints, the output file it writes, and what a fatal signal means."""
from __future__ import annotations

import re
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from edgeprune.errors import DeviceError, EdgepruneError
from edgeprune.profile.qemu import _tail as tail
from edgeprune.targets import Target, load_target

if TYPE_CHECKING:
    from edgeprune.compile.api import CompiledModel

_LINE = re.compile(r"^EP_([A-Z_]+) (\S+)(?: (\d+))?$")


class IllegalInstructionError(DeviceError):
    """The executable uses an instruction the core it runs on does not have (SIGILL)."""


@dataclass(frozen=True)
class AppReport:
    """What the application printed: its clock ("insn" or "ns"), ticks of every run, every
    layer's median ticks over the runs, stack high-water mark, and one clock reading's cost."""

    clock: str
    run_ticks: list[int]
    layer_ticks: list[int]
    stack_bytes: int
    timer_cost: int


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


def input_payload(inputs: Sequence[np.ndarray | bytes], runs: int) -> bytes:
    """input.bin: the run count (u32), then every input tensor's bytes."""
    return np.uint32(runs).tobytes() + b"".join(
        x if isinstance(x, bytes) else np.ascontiguousarray(x).tobytes() for x in inputs)


def parse_report(stdout: str, runs: int, where: str) -> AppReport:
    """The EP_ lines of the application's stdout; an error if it did not report `runs` runs."""
    found: dict[str, list[tuple[str, int]]] = {}
    for line in stdout.splitlines():
        match = _LINE.match(line.strip())
        if match:
            found.setdefault(match[1], []).append((match[2], int(match[3] or 0)))
    run_ticks = [t for _, t in found.get("RUN", [])]
    if len(run_ticks) != runs:
        raise DeviceError(f"the executable on {where} reported {len(run_ticks)} of {runs} runs; output:\n{tail(stdout)}")
    return AppReport(
        clock=found.get("CLOCK", [("none", 0)])[0][0],
        run_ticks=run_ticks,
        layer_ticks=[t for _, t in sorted(found.get("LAYER", []), key=lambda item: int(item[0]))],
        stack_bytes=found["STACK"][0][1] if "STACK" in found else 0,
        timer_cost=found["TIMER_COST"][0][1] if "TIMER_COST" in found else 0,
    )


def split_outputs(raw: bytes, specs: list[dict]) -> list[np.ndarray]:
    """output.bin cut into the model's output tensors (manifest entries: shape, dtype, bytes)."""
    ends = np.cumsum([spec["bytes"] for spec in specs])
    if len(raw) < (ends[-1] if len(ends) else 0):
        raise DeviceError(f"output.bin has {len(raw)} bytes, the model's outputs {int(ends[-1])}")
    return [np.frombuffer(raw[end - spec["bytes"]:end], dtype=spec["dtype"]).reshape(spec["shape"])
            for spec, end in zip(specs, ends)]


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
