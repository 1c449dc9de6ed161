"""The `edgeprune run` application's interface on every board (the semihosting firmware of
targets/cortex-m/ep_main_semihost.c, the Linux boards' targets/linux/ep_main_linux.c): the input
file it reads, the EP_ report lines it prints, which this module alone parses, and the output
file it writes."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from edgeprune.errors import DeviceError

_LINE = re.compile(r"^EP_([A-Z_]+) (\S+)(?: (\d+))?$")  # EP_<KIND> <index or word> [<value>]


@dataclass(frozen=True)
class AppReport:
    """What the application printed: its clock ("insn" or "ns"; "none" when it does not say),
    ticks of every run, every layer's ticks (the Linux application: median over the runs; the
    firmware: the last run), stack high-water mark, and one clock reading's cost."""

    clock: str
    run_ticks: list[int]
    layer_ticks: list[int]
    stack_bytes: int
    timer_cost: int


def tail(text: str, lines: int = 15) -> str:
    """The last `lines` lines of `text` (or "(no output)")."""
    return "\n".join(text.strip().splitlines()[-lines:]) or "(no output)"


def input_payload(inputs: Sequence[np.ndarray | bytes], runs: int) -> bytes:
    """input.bin: the run count (u32), then every input tensor's bytes."""
    return np.uint32(runs).tobytes() + b"".join(
        x if isinstance(x, bytes) else np.ascontiguousarray(x).tobytes() for x in inputs)


def parse_report(stdout: str, runs: int, source: str) -> AppReport:
    """The EP_ lines of what `source` (e.g. "the firmware") printed; an error if it did not report
    `runs` runs."""
    found: dict[str, list[tuple[str, int]]] = {}
    for line in stdout.splitlines():
        match = _LINE.match(line.strip())
        if match:
            found.setdefault(match[1], []).append((match[2], int(match[3] or 0)))
    run_ticks = [t for _, t in found.get("RUN", [])]
    if len(run_ticks) != runs:
        raise DeviceError(f"{source} reported {len(run_ticks)} of {runs} runs; output:\n{tail(stdout)}")
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
