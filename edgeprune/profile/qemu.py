"""Run a compiled model's firmware on QEMU with `-icount shift=0` through semihosting: the input
goes in as a file, outputs and per-run / per-layer timer ticks come back."""
from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from edgeprune.errors import DeviceError, EdgepruneError
from edgeprune.targets import Target, require_program

QEMU_SYSTEM = "qemu-system-arm"
_LINE = re.compile(r"^EP_(RUN|LAYER|STACK) (\d+) (\d+)$")


@dataclass
class QemuRun:
    """What one QEMU session measured. Ticks are of the core-clock SysTick; under `-icount
    shift=0` one tick is `instructions_per_tick` guest instructions (not cycles)."""

    outputs: list[np.ndarray]
    run_ticks: list[int]
    layer_ticks: list[int]
    stack_bytes: int
    instructions_per_tick: float
    method: ClassVar[str] = "QEMU, -icount shift=0"  # how the figures were measured, for reports

    @property
    def instructions(self) -> float:
        """Instructions of the last inference."""
        return self.run_ticks[-1] * self.instructions_per_tick

    @property
    def layer_instructions(self) -> list[float]:
        return [t * self.instructions_per_tick for t in self.layer_ticks]


def qemu_command(target: Target, elf: Path) -> list[str]:
    if not target.qemu_machine:
        raise EdgepruneError(
            f"board {target.name} has no QEMU model; run it on the board itself (edgeprune profile --device serial://...)"
        )
    return [
        require_program(QEMU_SYSTEM), "-M", target.qemu_machine, "-cpu", target.qemu_cpu,
        "-nographic", "-monitor", "none", "-serial", "none",
        "-chardev", "file,id=console,path=console.txt",
        "-semihosting-config", "enable=on,target=native,chardev=console",
        "-icount", "shift=0", "-kernel", str(elf),
    ]


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:]) or "(no output)"


def run_on_qemu(
    target: Target, elf: Path, inputs: list[np.ndarray], output_specs: list[dict],
    runs: int = 1, timeout: float = 120.0,
) -> QemuRun:
    """Boot the firmware, run the model `runs` times on `inputs`, and read back what it measured."""
    command = qemu_command(target, elf)
    with tempfile.TemporaryDirectory(prefix="edgeprune-qemu-") as scratch:
        work = Path(scratch)
        payload = np.uint32(runs).tobytes() + b"".join(np.ascontiguousarray(x).tobytes() for x in inputs)
        (work / "input.bin").write_bytes(payload)
        console = work / "console.txt"
        try:
            done = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise DeviceError(
                f"QEMU ({target.qemu_machine}) did not finish within {timeout:g} s and was stopped; "
                f"last output:\n{_tail(_read(console))}"
            ) from None
        text = _read(console)
        if done.returncode != 0:
            raise DeviceError(
                f"the firmware on QEMU ({target.qemu_machine}) stopped with code {done.returncode}"
                f"{' (a CPU fault)' if done.returncode == 0xFA else ''}; last output:\n"
                f"{_tail(text + done.stderr)}"
            )
        raw = (work / "output.bin").read_bytes()
    outputs, offset = [], 0
    for spec in output_specs:
        outputs.append(np.frombuffer(raw[offset:offset + spec["bytes"]], dtype=spec["dtype"]).reshape(spec["shape"]))
        offset += spec["bytes"]
    found: dict[str, list[tuple[int, int]]] = {"RUN": [], "LAYER": [], "STACK": []}
    for line in text.splitlines():
        match = _LINE.match(line.strip())
        if match:
            found[match[1]].append((int(match[2]), int(match[3])))
    if len(found["RUN"]) != runs:
        raise DeviceError(f"the firmware reported {len(found['RUN'])} of {runs} runs; output:\n{_tail(text)}")
    return QemuRun(
        outputs=outputs,
        run_ticks=[t for _, t in found["RUN"]],
        layer_ticks=[t for _, t in sorted(found["LAYER"])],
        stack_bytes=found["STACK"][0][1] if found["STACK"] else 0,
        instructions_per_tick=1e9 / target.clock_hz,
    )
