"""The QEMU device (`qemu:BOARD`) for bare-metal boards, under `-icount shift=0`, with two
transports: the profiling protocol over the board's UART, or semihosting (`run_on_qemu`: the
input goes in as a file, outputs and per-run / per-layer timer ticks come back)."""
from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from edgeprune.artefact import content_hash
from edgeprune.compile.api import CompiledModel
from edgeprune.compile.firmware import build_profile_app
from edgeprune.errors import DeviceError, EdgepruneError
from edgeprune.profile.client import DeviceClient
from edgeprune.profile.devices import Device, DeviceURL, Measurement, measure, register_device
from edgeprune.profile.run_app import input_payload, parse_report, split_outputs, tail
from edgeprune.targets import Target, load_target, require_program

QEMU_SYSTEM = "qemu-system-arm"
EXIT_GRACE_SECONDS = 0.5


def qemu_command(target: Target, elf: Path, serial: str = "none") -> list[str]:
    """QEMU for `elf` on `target` under `-icount shift=0`; semihosting writes console.txt in the
    working folder; `serial` is the board UART's chardev (e.g. a TCP server)."""
    if not target.qemu_machine:
        raise EdgepruneError(
            f"board {target.name} has no QEMU model; run it on the board itself (edgeprune profile --device serial://...)"
        )
    return [
        require_program(QEMU_SYSTEM), "-M", target.qemu_machine, "-cpu", target.qemu_cpu,
        "-nographic", "-monitor", "none", "-serial", serial,
        "-chardev", "file,id=console,path=console.txt",
        "-semihosting-config", "enable=on,target=native,chardev=console",
        "-icount", "shift=0", "-kernel", str(Path(elf).resolve()),
    ]


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def run_on_qemu(
    target: Target, model: CompiledModel, inputs: Sequence[np.ndarray | bytes], runs: int = 1,
    timeout: float = 120.0,
) -> Measurement:
    """Boot the compiled firmware.elf, run the model `runs` times on `inputs`, and read back what
    it measured: SysTick ticks of the core clock, `1e9 / clock_hz` instructions each."""
    command = qemu_command(target, model.elf)
    with tempfile.TemporaryDirectory(prefix="edgeprune-qemu-") as scratch:
        work = Path(scratch)
        (work / "input.bin").write_bytes(input_payload(inputs, runs))
        console = work / "console.txt"
        try:
            done = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise DeviceError(
                f"QEMU ({target.qemu_machine}) did not finish within {timeout:g} s and was stopped; "
                f"last output:\n{tail(_read(console))}"
            ) from None
        text = _read(console)
        if done.returncode != 0:
            raise DeviceError(
                f"the firmware on QEMU ({target.qemu_machine}) stopped with code {done.returncode}"
                f"{' (a CPU fault)' if done.returncode == 0xFA else ''}; last output:\n"
                f"{tail(text + done.stderr)}"
            )
        raw = (work / "output.bin").read_bytes()
    report = parse_report(text, runs, "the firmware")
    return Measurement(split_outputs(raw, model.manifest["outputs"]), report.run_ticks, report.layer_ticks,
                       report.stack_bytes, QemuDevice.unit, 1e9 / target.clock_hz, target.name,
                       content_hash(model.source))


# --- The QEMU device: the profiling firmware (profile.elf) with its UART on a loopback socket ---

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@register_device("qemu")
class QemuDevice(Device):
    """The model on QEMU (`qemu:<board>`), over one of two transports (`?transport=`):
    `uart` (the default): profile.elf boots with the board's UART on a loopback TCP port and the
    host talks to it through `socket://`, the code path of a real board; `semihosting`: the
    compiled firmware.elf reads its inputs from a file and prints its figures (`run_on_qemu`,
    what `edgeprune run` uses). Figures are instructions (`-icount shift=0`), not cycles; the two
    firmwares' figures differ by a few instructions (each one's own runtime)."""

    TRANSPORTS = ("uart", "semihosting")
    unit = "instructions"

    def __init__(self, url: DeviceURL, *, timeout: float = 2.0, retries: int = 3,
                 boot_timeout: float = 20.0, run_timeout: float = 120.0) -> None:
        super().__init__(url)
        self.timeout, self.retries = timeout, retries
        self.boot_timeout, self.run_timeout = boot_timeout, run_timeout
        self.target = load_target(url.board)
        self.transport = url.options.get("transport", "uart")
        if self.transport not in self.TRANSPORTS:
            raise EdgepruneError(f"device {url.text!r}: no QEMU transport {self.transport!r}; "
                                 f"transport= takes {' or '.join(self.TRANSPORTS)}")
        if not self.target.qemu_machine:
            raise EdgepruneError(f"board {self.target.name} has no QEMU model; profile it on the board "
                                 f"(--device serial:///dev/ttyACM0?board={self.target.name})")
        if self.transport == "uart" and self.target.uart_base is None:
            raise EdgepruneError(f"board {self.target.name} names no UART for the profiling protocol "
                                 f"([uart] base in {self.target.source})")
        self.process: subprocess.Popen | None = None
        self.client: DeviceClient | None = None
        self.port: int | None = None
        self._scratch: tempfile.TemporaryDirectory | None = None
        self.model: CompiledModel | None = None  # semihosting: the firmware.elf it runs

    @property
    def method(self) -> str:
        return "QEMU, -icount shift=0" + (", semihosting" if self.transport == "semihosting" else "")

    @property
    def socket_url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def prepare(self, firmware_dir: Path) -> None:
        self.close()
        if self.transport == "semihosting":
            self.model = CompiledModel.load(firmware_dir)
            return
        elf = build_profile_app(Path(firmware_dir), self.target)
        for _ in range(3):  # another program may take the free port before QEMU does
            self._boot(elf)
            try:
                self.client = self._connect()
                return
            except _PortTaken:
                self._stop()
        raise DeviceError(f"QEMU ({self.target.qemu_machine}) found no free TCP port for its UART")

    def run(self, inputs: Sequence[np.ndarray | bytes], repeats: int = 1) -> Measurement:
        if self.model is not None:
            return run_on_qemu(self.target, self.model, inputs, runs=repeats, timeout=self.run_timeout)
        if self.client is None:
            raise DeviceError(f"{self.url.text}: run() before prepare()")
        try:
            return measure(self.client, inputs, repeats, unit=self.unit,
                           units_per_tick=1e9 / self.target.clock_hz)
        except DeviceError as exc:
            raise self._failure(str(exc)) from None
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.model = None
        if self.client is not None:
            self.client.close()
            self.client = None
        self._stop()

    def _boot(self, elf: Path) -> None:
        self._scratch = tempfile.TemporaryDirectory(prefix="edgeprune-qemu-")
        self.port = _free_port()
        serial = f"tcp:127.0.0.1:{self.port},server=on,wait=off,nodelay=on"
        with open(Path(self._scratch.name) / "stderr.txt", "w") as stderr:
            self.process = subprocess.Popen(qemu_command(self.target, elf, serial), cwd=self._scratch.name,
                                            stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr)

    def _connect(self) -> DeviceClient:
        deadline = time.monotonic() + self.boot_timeout
        while True:
            if self.process.poll() is not None:
                if "in use" in self._output():
                    raise _PortTaken()
                raise self._failure("QEMU stopped while booting")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass  # QEMU listens: its UART is up
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise self._failure(f"QEMU did not open its UART socket within {self.boot_timeout:g} s")
                time.sleep(0.02)
        try:
            return DeviceClient(self.socket_url, timeout=self.timeout, retries=self.retries,
                                infer_timeout=self.run_timeout)
        except DeviceError as exc:
            raise self._failure(str(exc)) from None

    def _output(self) -> str:
        """QEMU's stderr and the firmware's semihosting console so far."""
        if self._scratch is None:
            return ""
        folder = Path(self._scratch.name)
        return _read(folder / "stderr.txt") + _read(folder / "console.txt")

    def _exited_within(self, seconds: float) -> bool:
        """A lost link is often QEMU dying: give the kernel a moment to report its exit."""
        try:
            self.process.wait(timeout=seconds)
            return True
        except subprocess.TimeoutExpired:
            return False

    def _failure(self, problem: str) -> DeviceError:
        """Stops QEMU and says what happened, with the end of QEMU's output."""
        if self.process is None:
            state = "QEMU is not running"
        elif not self._exited_within(EXIT_GRACE_SECONDS):
            state = "QEMU was still running and has been stopped"
        else:
            code = self.process.returncode
            state = (f"QEMU exited with code {code}" if code >= 0 else f"QEMU was killed (signal {-code})") \
                + (" after a CPU fault" if code == 0xFA else "")
        output = self._output()
        self.close()
        return DeviceError(f"{self.url.text}: {problem}; {state}. Last output of QEMU:\n{tail(output)}")

    def _stop(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait()
            self.process = None
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None


class _PortTaken(Exception):
    """QEMU could not listen on the chosen port."""
