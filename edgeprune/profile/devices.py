"""Devices chosen by a URL-like string, the way pyserial picks a port handler by scheme.

    qemu:mps2-an386                                  QEMU (edgeprune.profile.qemu)
    qemu-user:cortex-a53?cpu=cortex-a72              qemu-user (edgeprune.profile.qemu_user)
    serial:///dev/ttyACM0?board=nucleo-l4r5zi&baud=115200   a board on a serial port
    socket://127.0.0.1:5555?board=host-sim           the protocol on a TCP socket
    ssh://pi@host[:port]                             a Linux board over SSH (edgeprune.profile.ssh)

A device class registers its schemes with `@register_device(...)`; `open_device(text)` parses
the string and builds the device. Every device returns a `Measurement`; the bare-metal ones run
firmware that speaks the profiling protocol, the qemu-user and SSH ones the Linux boards' run
application (targets/linux/ep_main_linux.c).
"""
from __future__ import annotations

import importlib
import inspect
import shlex
import shutil
import statistics
import subprocess
import tempfile
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, ClassVar, Sequence
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from edgeprune.compile.firmware import PROFILE_APP, build_profile_app
from edgeprune.errors import DeviceError, EdgepruneError
from edgeprune.profile.client import DeviceClient
from edgeprune.profile.closing import Closing
from edgeprune.targets import load_target

# Modules that register device classes when imported (a missing one is skipped).
DEVICE_MODULES = ("edgeprune.profile.qemu", "edgeprune.profile.qemu_user", "edgeprune.profile.ssh")
DEVICE_CLASSES: dict[str, type[Device]] = {}


@dataclass(frozen=True)
class DeviceURL:
    text: str
    scheme: str
    target: str  # QEMU machine, serial port path, or host name
    user: str | None = None
    port: int | None = None
    options: dict[str, str] = field(default_factory=dict)  # the query: board, baud, ...

    @property
    def board(self) -> str | None:
        """The board name (targets/<board>.toml): `?board=`, or the qemu: / qemu-user: board."""
        return self.options.get("board") or (self.target if self.scheme in ("qemu", "qemu-user") else None)


def parse_device_url(text: str) -> DeviceURL:
    parts = urlsplit(text)
    if not parts.scheme:
        raise EdgepruneError(f"device {text!r} has no scheme; {_known_schemes()}")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    if parts.netloc and parts.scheme != "serial":
        try:
            port = parts.port
        except ValueError as exc:
            raise EdgepruneError(f"device {text!r}: {exc}") from exc
        return DeviceURL(text, parts.scheme, parts.hostname or "", parts.username, port, options)
    target = parts.netloc + parts.path  # serial://COM3 or serial:///dev/ttyACM0
    if not target:
        raise EdgepruneError(f"device {text!r} names no {parts.scheme} target")
    return DeviceURL(text, parts.scheme, target, options=options)


@dataclass(frozen=True)
class Measurement:
    """What one device run measured. Ticks are the device timer's; `units_per_tick` converts them
    to `unit` ("cycles" on silicon with DWT, "instructions" on QEMU under -icount, "ns")."""

    outputs: list[np.ndarray]
    run_ticks: list[int]    # each run
    layer_ticks: list[int]  # each layer, last run (Linux boards over SSH: median over the runs)
    stack_bytes: int        # high-water mark
    unit: str
    units_per_tick: float
    board: str
    model_id: str
    timer_cost: int = 0     # what one timer reading adds to an interval (ticks are net of it)

    @property
    def last(self) -> float:
        """The last run's figure."""
        return self.run_ticks[-1] * self.units_per_tick

    @property
    def median(self) -> float:
        return statistics.median(self.run_ticks) * self.units_per_tick

    @property
    def minimum(self) -> float:
        return min(self.run_ticks) * self.units_per_tick

    @property
    def maximum(self) -> float:
        return max(self.run_ticks) * self.units_per_tick

    @property
    def layers(self) -> list[float]:
        return [t * self.units_per_tick for t in self.layer_ticks]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["outputs"] = [o.tolist() for o in self.outputs]
        return data


class Device(Closing, ABC):
    """A place to run firmware: prepare (flash or load) it, run inputs through it, close it."""

    schemes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, url: DeviceURL) -> None:
        self.url = url

    @property
    @abstractmethod
    def method(self) -> str:
        """How the device measures, for reports (e.g. "QEMU, -icount shift=0")."""

    @property
    @abstractmethod
    def unit(self) -> str:
        """The unit of its figures: "instructions" (QEMU), "cycles" (silicon), "ns" (wall clock)."""

    @abstractmethod
    def prepare(self, firmware_dir: Path) -> None:
        """Loads the profiling firmware of the compiled-model folder `firmware_dir` (profile.elf,
        built on demand) onto the device."""

    @abstractmethod
    def run(self, inputs: Sequence[np.ndarray | bytes], repeats: int = 1) -> Measurement:
        """Writes the inputs, runs the model `repeats` times, reads outputs and timings."""


def register_device(*schemes: str) -> Callable[[type[Device]], type[Device]]:
    def add(cls: type[Device]) -> type[Device]:
        cls.schemes = schemes
        for scheme in schemes:
            DEVICE_CLASSES[scheme] = cls
        return cls
    return add


def _load_device_modules() -> None:
    for name in DEVICE_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


def _known_schemes() -> str:
    _load_device_modules()
    return "known schemes: " + ", ".join(f"{s}:" for s in sorted(DEVICE_CLASSES))


def open_device(text: str | DeviceURL, **options) -> Device:
    """The device `text` names, e.g. "qemu:mps2-an386"; `options` go to its class."""
    url = text if isinstance(text, DeviceURL) else parse_device_url(text)
    _load_device_modules()
    cls = DEVICE_CLASSES.get(url.scheme)
    if cls is None:
        raise EdgepruneError(f"no device for {url.text!r} (scheme {url.scheme!r}); {_known_schemes()}")
    known = [name for name in inspect.signature(cls).parameters if name != "url"]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise EdgepruneError(f"device {url.text!r} takes no {', '.join(unknown)} option "
                             f"(its options: {', '.join(known)})")
    return cls(url, **options)


def measure(client: DeviceClient, inputs: Sequence[np.ndarray | bytes], repeats: int, *,
            unit: str, units_per_tick: float) -> Measurement:
    """Runs the model behind `client` on `inputs` and collects what the protocol reports."""
    info = client.info()
    if len(inputs) != len(info.inputs):
        raise EdgepruneError(f"the model takes {len(info.inputs)} inputs, got {len(inputs)}")
    for index, (data, tensor) in enumerate(zip(inputs, info.inputs)):
        raw = data.tobytes() if isinstance(data, np.ndarray) else bytes(data)
        if len(raw) != tensor.nbytes:
            raise EdgepruneError(f"input {tensor.name!r} takes {tensor.nbytes} bytes, got {len(raw)}")
        client.write_input(index, raw)
    run_ticks = client.infer(repeats)
    outputs = [np.frombuffer(client.read_output(i), dtype=t.dtype).reshape(t.shape)
               for i, t in enumerate(info.outputs)]
    return Measurement(outputs, run_ticks, client.layer_ticks(), client.stack_high_water(), unit,
                       units_per_tick, info.board, info.model_id)


@register_device("serial", "socket")
class SerialDevice(Device):
    """A board running edgeprune's protocol firmware on a serial port (or a TCP socket).

    Options in the URL: `board=` (targets/<board>.toml), `baud=` (115200), `flash=pyocd|none`
    (pyocd by default on serial:, none on socket:; pyocd needs `pyocd_target=`, e.g.
    stm32l4r5zitx), `unit=` (cycles). `flash` (`--flash` on the command line) is a command that
    loads a firmware, `{elf}` standing for its path (e.g. `openocd -f board.cfg -c "program {elf}
    verify reset exit"`): it replaces the URL's `flash=`, runs before each prepare, and the link is
    then opened again, waiting up to `link_timeout` seconds for it to come back.
    """

    def __init__(self, url: DeviceURL, *, timeout: float = 2.0, retries: int = 3, flash: str | None = None,
                 link_timeout: float = 20.0) -> None:
        super().__init__(url)
        self.timeout, self.retries = timeout, retries
        self.flash, self.link_timeout = flash, link_timeout
        self.client: DeviceClient | None = None

    @property
    def method(self) -> str:
        """The board's timer (from its board file), which counts core clock cycles on silicon."""
        board = self.url.board
        return f"{load_target(board).timer_method} on the board" if board else "the board's timer"

    @property
    def unit(self) -> str:
        return self.url.options.get("unit", "cycles")

    @property
    def port_url(self) -> str:
        """The pyserial URL: the port path, or socket://host:port."""
        return f"socket://{self.url.target}:{self.url.port}" if self.url.scheme == "socket" else self.url.target

    def prepare(self, firmware_dir: Path) -> None:
        self.close()
        folder = Path(firmware_dir)
        if self.flash is not None:
            run_flash_command(self.flash, self._profile_app(folder))
        elif self.url.options.get("flash", "none" if self.url.scheme == "socket" else "pyocd") == "pyocd":
            pyocd_target = self.url.options.get("pyocd_target")
            require_pyocd(folder / PROFILE_APP, pyocd_target)
            flash_with_pyocd(self._profile_app(folder), pyocd_target)
        self.client = self._connect(self.link_timeout if self.flash is not None else 0.0)

    def _profile_app(self, folder: Path) -> Path:
        return build_profile_app(folder, load_target(self.url.board or _folder_board(folder)))

    def _connect(self, patience: float) -> DeviceClient:
        """The protocol client on the port; a link that is not (yet) there is tried again for
        `patience` seconds (a freshly flashed board resets, an emulator boots)."""
        deadline = time.monotonic() + patience
        while True:
            try:
                return DeviceClient(self.port_url, baudrate=int(self.url.options.get("baud", 115200)),
                                    timeout=self.timeout, retries=self.retries)
            except DeviceError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def run(self, inputs: Sequence[np.ndarray | bytes], repeats: int = 1) -> Measurement:
        if self.client is None:
            raise DeviceError(f"{self.url.text}: run() before prepare()")
        return measure(self.client, inputs, repeats, unit=self.unit, units_per_tick=1.0)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None


def _folder_board(firmware_dir: Path) -> str:
    import json

    manifest = firmware_dir / "manifest.json"
    if not manifest.is_file():
        raise EdgepruneError(f"{firmware_dir} is not a compiled-model folder (no manifest.json)")
    return json.loads(manifest.read_text())["board"]


def run_flash_command(command: str, elf: Path) -> None:
    """Runs the user's flash `command` (shell words, `{elf}` replaced by the firmware's path; no
    shell). Its output goes to a file, not a pipe: a command may leave a program running (an
    emulator) that keeps its output open."""
    if "{elf}" not in command:
        raise EdgepruneError(f"flash command {command!r} does not name the firmware: put {{elf}} where its path goes")
    words = [word.replace("{elf}", str(elf)) for word in shlex.split(command)]
    with tempfile.TemporaryFile("w+") as output:
        try:
            code = subprocess.run(words, stdin=subprocess.DEVNULL, stdout=output, stderr=output).returncode
        except OSError as exc:
            raise DeviceError(f"flash command `{shlex.join(words)}` could not run: {exc}") from None
        if code != 0:
            output.seek(0)
            raise DeviceError(f"flash command `{shlex.join(words)}` failed with code {code}:\n{output.read().strip()}")


def _pyocd_command(elf: Path, pyocd_target: str | None) -> list[str]:
    return ["pyocd", "load", "-t", pyocd_target or "TARGET", str(elf)]


def require_pyocd(elf: Path, pyocd_target: str | None) -> None:
    """A DeviceError saying how to flash by hand if pyocd or `pyocd_target=` is missing."""
    if pyocd_target is None or shutil.which("pyocd") is None:
        raise DeviceError(f"cannot flash with pyocd (it needs to be installed and `pyocd_target=` in "
                          f"the device URL): run `make -C {elf.parent} {elf.name}` and "
                          f"`{' '.join(_pyocd_command(elf, pyocd_target))}` yourself and add "
                          f"`flash=none` to the device URL")


def flash_with_pyocd(elf: Path, pyocd_target: str | None) -> None:
    """Flashes `elf` through the board's debug probe: `pyocd load -t TARGET ELF`."""
    command = _pyocd_command(elf, pyocd_target)
    if not elf.is_file():
        raise EdgepruneError(f"no firmware at {elf}; build it with `edgeprune compile` first")
    require_pyocd(elf, pyocd_target)
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise DeviceError(f"`{' '.join(command)}` failed:\n{result.stderr.strip()}")
