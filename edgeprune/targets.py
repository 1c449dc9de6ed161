"""Board descriptions: one TOML file per board in targets/, read into `Target` objects.

Adding a board means adding a file: `targets/<name>.toml` (see targets/mps2-an386.toml). Extra
folders of board files can be named in the EDGEPRUNE_TARGETS_PATH environment variable
(colon-separated); they are searched before the built-in folder.

A bare-metal board names its C drivers (targets/<family>/drivers/, or a `drivers/` folder next to
its board file): `timer = "dwt"` is timer_dwt.c, `[uart] driver = "stm32-usart"` is
uart_stm32_usart.c, `setup = "netduinoplus2"` (clocks and the UART's pins) is
setup_netduinoplus2.c.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from edgeprune.errors import EdgepruneError, ToolchainMissingError, UnknownTargetError

TARGETS_DIR = Path(__file__).resolve().parent.parent / "targets"

# Debian package that provides each external program edgeprune calls.
DEBIAN_PACKAGES = {
    "arm-none-eabi-gcc": "gcc-arm-none-eabi (and libnewlib-arm-none-eabi)",
    "qemu-system-arm": "qemu-system-arm",
    "qemu-aarch64": "qemu-user",
    "qemu-arm": "qemu-user",
    "aarch64-linux-gnu-gcc": "gcc-aarch64-linux-gnu",
    "arm-linux-gnueabihf-gcc": "gcc-arm-linux-gnueabihf",
    "make": "make",
    "ssh": "openssh-client",
}


# What each board timer counts on silicon (its ticks are core clock cycles on every one of them).
TIMERS = {
    "systick": "SysTick",
    "dwt": "DWT cycle counter",
    "nrf": "nRF51 TIMER0 at 16 MHz",
}


@dataclass(frozen=True)
class MemoryRegion:
    origin: int
    length: int


@dataclass(frozen=True)
class Target:
    """Everything the code generator, the firmware build and the runner need about one board."""

    name: str
    description: str
    family: str
    cpu: str
    fpu: str
    clock_hz: int
    llvm: dict
    cflags: tuple[str, ...]
    flash: MemoryRegion
    ram: MemoryRegion
    weights: MemoryRegion | None = None
    qemu_machine: str | None = None
    qemu_cpu: str | None = None
    qemu_user: str | None = None  # qemu-user program for Linux boards (qemu-aarch64, qemu-arm)
    gcc_prefix: str = "arm-none-eabi-"
    uart_base: int | None = None  # the UART the profiling protocol uses (`[uart] base`)
    uart_driver: str | None = None  # `[uart] driver`: drivers/uart_<driver>.c
    uart_baud: int = 115_200
    uart_clock_hz: int | None = None  # `[uart] clock_hz`: the UART's kernel clock, if it needs one
    timer: str = "systick"        # a key of TIMERS: drivers/timer_<timer>.c
    setup: str | None = None      # drivers/setup_<setup>.c: clocks and the UART's pins
    source: Path = field(default=TARGETS_DIR, compare=False)

    @property
    def has_fpu(self) -> bool:
        return self.fpu != "none"

    @property
    def runtime_dir(self) -> Path:
        """The C side of the board family: startup, linker script template, runtime."""
        return TARGETS_DIR / self.family

    @property
    def timer_method(self) -> str:
        """What the board timer is, for reports: e.g. "DWT cycle counter"."""
        return TIMERS[self.timer]

    @property
    def drivers(self) -> tuple[Path, ...]:
        """The C drivers the board file names (none for a family without drivers/)."""
        if not (self.runtime_dir / "drivers").is_dir():
            return ()
        names = [f"timer_{self.timer}"]
        names += [f"uart_{self.uart_driver}"] if self.uart_driver else []
        names += [f"setup_{self.setup}"] if self.setup else []
        return tuple(_driver(self, name.replace("-", "_") + ".c") for name in names)

    @property
    def gcc(self) -> str:
        return self.gcc_prefix + "gcc"

    @property
    def c_defines(self) -> tuple[str, ...]:
        """-D flags for the board runtime: clock and profiling UART."""
        flags = [f"-DEP_CLOCK_HZ={self.clock_hz}u"]
        if self.uart_base is not None:
            flags += [f"-DEP_UART_BASE={self.uart_base:#x}u", f"-DEP_UART_BAUD={self.uart_baud}u"]
        if self.uart_clock_hz is not None:
            flags.append(f"-DEP_UART_CLOCK_HZ={self.uart_clock_hz}u")
        return tuple(flags)

    def llvm_target(self):
        """The TVM target (a JSON dict, as TVM 0.27 wants it)."""
        import tvm

        return tvm.target.Target(dict(self.llvm, kind="llvm"))


def _search_path() -> list[Path]:
    extra = os.environ.get("EDGEPRUNE_TARGETS_PATH", "")
    return [Path(p) for p in extra.split(os.pathsep) if p] + [TARGETS_DIR]


def _target_files() -> dict[str, Path]:
    files: dict[str, Path] = {}
    for folder in reversed(_search_path()):
        for path in sorted(folder.glob("*.toml")):
            files[path.stem] = path
    return files


def target_names() -> list[str]:
    return sorted(_target_files())


def _region(spec: dict | None) -> MemoryRegion | None:
    return None if spec is None else MemoryRegion(int(spec["origin"]), int(spec["length"]))


def _timer(name: str, path: Path) -> str:
    if name not in TIMERS:
        raise EdgepruneError(f"board file {path}: timer {name!r} is not one of {', '.join(TIMERS)}")
    return name


def _driver(target: Target, name: str) -> Path:
    """drivers/<name> next to the board file, else in the family's folder."""
    folders = [target.source.parent / "drivers", target.runtime_dir / "drivers"]
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    raise EdgepruneError(f"board file {target.source}: no driver {name} in {' or '.join(map(str, folders))}")


@cache
def _parse(path: Path) -> Target:
    try:
        data = tomllib.loads(path.read_text())
        memory, qemu, gcc, uart = data["memory"], data.get("qemu", {}), data["gcc"], data.get("uart", {})
        target = Target(
            name=path.stem,
            description=data["description"],
            family=data["family"],
            cpu=data["cpu"],
            fpu=data.get("fpu", "none"),
            clock_hz=int(data["clock_hz"]),
            llvm=dict(data["llvm"]),
            cflags=tuple(gcc["cflags"]),
            gcc_prefix=gcc.get("prefix", "arm-none-eabi-"),
            flash=_region(memory["flash"]),
            ram=_region(memory["ram"]),
            weights=_region(memory.get("weights")),
            qemu_machine=qemu.get("machine"),
            qemu_cpu=qemu.get("cpu"),
            qemu_user=qemu.get("user"),
            uart_base=uart.get("base"),
            uart_driver=uart.get("driver"),
            uart_baud=int(uart.get("baud", 115_200)),
            uart_clock_hz=uart.get("clock_hz"),
            timer=_timer(data.get("timer", "systick"), path),
            setup=data.get("setup"),
            source=path,
        )
    except (KeyError, tomllib.TOMLDecodeError, TypeError, ValueError) as exc:
        raise EdgepruneError(f"board file {path} is malformed: {exc!r}") from exc
    if target.uart_base is not None and target.uart_driver is None:
        raise EdgepruneError(f"board file {path}: [uart] needs a driver (a drivers/uart_<driver>.c)")
    _ = target.drivers  # raises if a driver file it names is missing
    return target


def load_target(name: str) -> Target:
    """The board called `name`; an unknown name lists the known ones."""
    files = _target_files()
    if name not in files:
        raise UnknownTargetError(
            f"unknown board {name!r}; known boards: {', '.join(sorted(files))} "
            f"(add one as a .toml file in {TARGETS_DIR} or a folder on EDGEPRUNE_TARGETS_PATH)"
        )
    return _parse(files[name])


def require_program(program: str) -> str:
    """The full path of an external program, or an error naming the Debian package to install."""
    path = shutil.which(program)
    if path is None:
        package = DEBIAN_PACKAGES.get(program, "the package that provides it")
        raise ToolchainMissingError(
            f"{program} is not installed; install the Debian package {package} "
            f"(scripts/bootstrap does this)"
        )
    return path


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n // 1024} KiB"


def _clock(hz: int) -> str:
    return f"{hz / 1e6:g} MHz"


def _list_targets(args: argparse.Namespace) -> int:
    rows = [load_target(name) for name in target_names()]
    print(f"{'board':<15} {'core':<11} {'fpu':<12} {'flash':>8} {'ram':>8} {'clock':>9}  {'timer':<8} "
          f"{'uart':<13} {'qemu':<16} description")
    for t in rows:
        timer = t.timer if t.family == "cortex-m" else "clock"  # Linux boards: CLOCK_MONOTONIC
        qemu = t.qemu_machine or t.qemu_user or "no (board)"
        print(f"{t.name:<15} {t.cpu:<11} {t.fpu:<12} {_size(t.flash.length):>8} {_size(t.ram.length):>8} "
              f"{_clock(t.clock_hz):>9}  {timer:<8} {t.uart_driver or '-':<13} {qemu:<16} {t.description}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "targets", help="list the boards edgeprune compiles for",
        description="List the boards described in targets/ (and EDGEPRUNE_TARGETS_PATH).",
    )
    parser.set_defaults(handler=_list_targets)
