"""Board descriptions: one TOML file per board in targets/, read into `Target` objects.

Adding a board means adding a file: `targets/<name>.toml` (see targets/mps2-an386.toml). Extra
folders of board files can be named in the EDGEPRUNE_TARGETS_PATH environment variable
(colon-separated); they are searched before the built-in folder.
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


TIMERS = ("systick", "dwt")


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
    timer: str = "systick"        # "systick", or "dwt": the DWT cycle counter (real silicon)
    source: Path = field(default=TARGETS_DIR, compare=False)

    @property
    def has_fpu(self) -> bool:
        return self.fpu != "none"

    @property
    def runtime_dir(self) -> Path:
        """The C side of the board family: startup, linker script template, runtime."""
        return TARGETS_DIR / self.family

    @property
    def gcc(self) -> str:
        return self.gcc_prefix + "gcc"

    @property
    def c_defines(self) -> tuple[str, ...]:
        """-D flags for the board runtime: clock, profiling UART, timer."""
        flags = [f"-DEP_CLOCK_HZ={self.clock_hz}u"]
        if self.uart_base is not None:
            flags.append(f"-DEP_UART_BASE={self.uart_base:#x}u")
        if self.timer == "dwt":
            flags.append("-DEP_TIMER_DWT=1")
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


@cache
def _parse(path: Path) -> Target:
    try:
        data = tomllib.loads(path.read_text())
        memory, qemu, gcc = data["memory"], data.get("qemu", {}), data["gcc"]
        return Target(
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
            uart_base=data["uart"]["base"] if "uart" in data else None,
            timer=_timer(data.get("timer", "systick"), path),
            source=path,
        )
    except (KeyError, tomllib.TOMLDecodeError, TypeError, ValueError) as exc:
        raise EdgepruneError(f"board file {path} is malformed: {exc!r}") from exc


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


def _list_targets(args: argparse.Namespace) -> int:
    rows = [load_target(name) for name in target_names()]
    print(f"{'board':<16} {'core':<11} {'fpu':<13} {'flash':>9} {'ram':>9}  {'qemu':<12} description")
    for t in rows:
        print(
            f"{t.name:<16} {t.cpu:<11} {t.fpu:<13} {_size(t.flash.length):>9}"
            f" {_size(t.ram.length):>9}  {t.qemu_machine or t.qemu_user or '-':<12} {t.description}"
        )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "targets", help="list the boards edgeprune compiles for",
        description="List the boards described in targets/ (and EDGEPRUNE_TARGETS_PATH).",
    )
    parser.set_defaults(handler=_list_targets)
