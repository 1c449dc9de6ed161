"""Compile a candidate and measure it on a device: the one place the search touches hardware.

Today this compiles with `edgeprune.compile` and runs it the way `edgeprune run` does, on QEMU
(qemu-system for bare-metal boards, qemu-user for Linux ones); the device strings are those of
`edgeprune profile --device`, whose devices can replace `measure` without touching the search.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from edgeprune.compile.api import CompiledModel, compile_model
from edgeprune.compile.int8 import has_dsp
from edgeprune.profile.devices import parse_device_url
from edgeprune.profile.run import run
from edgeprune.search.errors import SearchError
from edgeprune.targets import load_target


@dataclass(frozen=True)
class Measurement:
    """Instructions per inference (QEMU -icount), per kernel, and the ELF's flash and RAM."""

    instructions: float
    layer_instructions: list[float]
    flash_bytes: int
    ram_bytes: int
    memory: dict
    relative_error: float  # device outputs vs onnxruntime on random inputs

    def to_dict(self) -> dict:
        return asdict(self)


def board_of(device: str) -> tuple[str, str | None]:
    """The board and the qemu-user core (or None) of a device the search can measure on, written
    as `edgeprune profile` takes it: qemu:BOARD for a bare-metal board, qemu-user:BOARD[?cpu=CORE]
    for a Linux (Cortex-A) one."""
    url = parse_device_url(device)
    if url.scheme not in ("qemu", "qemu-user") or not url.board:
        raise SearchError(f"device {device!r}: the search measures on QEMU for now (qemu:BOARD for a "
                          "bare-metal board, e.g. qemu:mps2-an386; qemu-user:BOARD for a Cortex-A board, "
                          "e.g. qemu-user:cortex-a53)")
    linux = load_target(url.board).family == "linux"
    if linux != (url.scheme == "qemu-user"):
        kind, scheme = ("a Linux (Cortex-A)", "qemu-user") if linux else ("a bare-metal", "qemu")
        raise SearchError(f"device {device!r}: {url.board} is {kind} board; use {scheme}:{url.board}")
    return url.board, url.options.get("cpu")


def device_has_dsp(device: str) -> bool:
    """Whether the device's core has the DSP extension, so that its int8 kernels are the DSP ones."""
    return has_dsp(load_target(board_of(device)[0]).llvm_target())


def compile_for(onnx_path: Path, device: str, out: Path) -> CompiledModel:
    """Compile `onnx_path` for the device's board into the firmware folder `out`."""
    return compile_model(str(onnx_path), board_of(device)[0], out)


def measure(onnx_path: Path, device: str, out: Path) -> Measurement:
    """Compile `onnx_path` into `out` and run it once on `device`."""
    compiled = compile_for(onnx_path, device, out)
    report = run(compiled, cpu=board_of(device)[1])
    elf = compiled.manifest["elf"]
    return Measurement(float(report.device.instructions),
                       [float(v) for v in report.device.layer_instructions],
                       int(elf["flash_total"]), int(elf["ram_total"]), compiled.manifest["memory"],
                       float(report.relative_error))
