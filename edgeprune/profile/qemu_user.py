"""Run a compiled model's static Linux executable (Cortex-A boards) under qemu-user, with
edgeprune's TCG plugin as an instruction clock: the input goes in as a file, outputs and
per-run / per-layer guest instruction counts come back (`run_on_qemu_user`), through the device
`qemu-user:BOARD[?cpu=CORE]` that `edgeprune run` and `edgeprune profile` open.

Wall time under qemu-user is host noise, so the executable's clock is the plugin's count of
guest instructions (targets/linux/qemu-plugin/ep_insn_plugin.c, built by
scripts/bootstrap-qemu-plugin). Those counts repeat exactly from one run to the next. Like the
Cortex-M figures they are instructions, not cycles.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from edgeprune.artefact import content_hash
from edgeprune.errors import DeviceError, ToolchainMissingError, UnknownTargetError
from edgeprune.profile.devices import Device, DeviceURL, Measurement, register_device
from edgeprune.profile.linux_app import linux_build, signal_error
from edgeprune.profile.run_app import input_payload, parse_report, split_outputs, tail
from edgeprune.targets import TARGETS_DIR, Target, load_target, require_program, target_names

if TYPE_CHECKING:
    from edgeprune.compile.api import CompiledModel

PLUGIN_ENV = "EDGEPRUNE_QEMU_PLUGIN"  # overrides where the plugin .so is looked for
PLUGIN_NAME = "libep_insn.so"
COUNTER_ENV = "EP_INSN_COUNTER"  # tells the guest where the plugin stores its count


def plugin_path() -> Path:
    """The built counting plugin, or an error saying how to build it."""
    explicit = os.environ.get(PLUGIN_ENV)
    candidates = [Path(explicit)] if explicit else [
        Path(sys.prefix) / "share" / "edgeprune" / "qemu-plugin" / PLUGIN_NAME,
        TARGETS_DIR.parent / ".venv" / "share" / "edgeprune" / "qemu-plugin" / PLUGIN_NAME,
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ToolchainMissingError(
        f"the instruction-counting QEMU plugin is not built ({candidates[0]} is missing); "
        f"run scripts/bootstrap-qemu-plugin (wall time under qemu-user is noise, so edgeprune "
        f"does not measure without it)"
    )


@cache
def known_cores(program: str) -> tuple[str, ...]:
    """The -cpu names a qemu-user program accepts."""
    listing = subprocess.run([program, "-cpu", "help"], capture_output=True, text=True, timeout=30).stdout
    return tuple(line.split()[0] for line in listing.splitlines()[1:] if line.strip())


def _check_core(target: Target, cpu: str) -> str:
    program = require_program(target.qemu_user)
    cores = known_cores(program)
    if cpu not in cores:
        boards = [n for n in target_names() if load_target(n).qemu_user == target.qemu_user]
        raise UnknownTargetError(
            f"unknown core {cpu!r} for {target.qemu_user}; its cores: {', '.join(cores)} "
            f"(boards it runs: {', '.join(boards)})"
        )
    return program


def qemu_user_command(target: Target, elf: Path, counter: Path, cpu: str | None = None) -> list[str]:
    """qemu-user running `elf` on the board's core (or `cpu`) with the counting plugin."""
    if not target.qemu_user:
        raise DeviceError(f"board {target.name} has no qemu-user emulator ([qemu] user in its board file)")
    cpu = cpu or target.qemu_cpu or target.cpu
    program = _check_core(target, cpu)
    return [program, "-cpu", cpu, "-plugin", f"{plugin_path()},counter={counter}", str(Path(elf).resolve())]


def run_on_qemu_user(
    target: Target, model: CompiledModel, inputs: Sequence[np.ndarray | bytes], runs: int = 1,
    timeout: float = 120.0, cpu: str | None = None,
) -> Measurement:
    """Run the executable under qemu-user, the model `runs` times on `inputs`; read back what it
    measured: guest instructions, net of what one clock reading adds (`timer_cost`). `cpu`
    emulates another core than the board's (a "will it run there" check)."""
    cpu = cpu or target.qemu_cpu or target.cpu
    with tempfile.TemporaryDirectory(prefix="edgeprune-qemu-user-") as scratch:
        work = Path(scratch)
        counter = work / "insn.counter"
        command = qemu_user_command(target, model.elf, counter, cpu)
        (work / "input.bin").write_bytes(input_payload(inputs, runs))
        env = dict(os.environ, **{COUNTER_ENV: str(counter)})
        try:
            done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise DeviceError(
                f"{target.qemu_user} ({cpu}) did not finish within {timeout:g} s and was stopped; last output:\n"
                f"{tail(exc.stdout.decode(errors='replace') if isinstance(exc.stdout, bytes) else exc.stdout or '')}"
            ) from None
        text = done.stdout + done.stderr
        if done.returncode < 0:
            raise signal_error(target, cpu, -done.returncode, text)
        if done.returncode != 0:
            raise DeviceError(
                f"the executable on {target.qemu_user} ({cpu}) stopped with code {done.returncode}; "
                f"last output:\n{tail(text)}"
            )
        raw = (work / "output.bin").read_bytes()
    report = parse_report(done.stdout, runs, f"the executable on {target.qemu_user} ({cpu})")
    if report.clock != "insn":
        raise DeviceError(f"the executable did not get the plugin's instruction clock (clock: {report.clock}); "
                          f"output:\n{tail(text)}")
    cost = report.timer_cost
    return Measurement(split_outputs(raw, model.manifest["outputs"]), [t - cost for t in report.run_ticks],
                       [t - cost for t in report.layer_ticks], report.stack_bytes, QemuUserDevice.unit, 1.0,
                       target.name, content_hash(model.source), cost)


@register_device("qemu-user")
class QemuUserDevice(Device):
    """A Linux board's executable under qemu-user (`qemu-user:cortex-a53`, `?cpu=` for another
    core), with the counting plugin: figures are guest instructions, net of the clock's own."""

    unit = "instructions"

    def __init__(self, url: DeviceURL, *, run_timeout: float = 600.0) -> None:
        super().__init__(url)
        self.run_timeout = run_timeout
        self.model: CompiledModel | None = None
        self.target: Target | None = None

    @property
    def method(self) -> str:
        cpu = self.url.options.get("cpu") or (self.target.qemu_cpu or self.target.cpu if self.target else self.url.board)
        return f"qemu-user -cpu {cpu}, guest instructions counted by edgeprune's TCG plugin"

    def prepare(self, firmware_dir: Path) -> None:
        self.model, self.target = linux_build(Path(firmware_dir), self.url.board, self.url.text)

    def run(self, inputs: Sequence[np.ndarray | bytes], repeats: int = 1) -> Measurement:
        if self.model is None:
            raise DeviceError(f"{self.url.text}: run() before prepare()")
        return run_on_qemu_user(self.target, self.model, inputs, runs=repeats, timeout=self.run_timeout,
                                cpu=self.url.options.get("cpu"))
