"""The firmware folder: sources, the board runtime, a linker script and a Makefile that rebuilds
firmware.elf with the board's toolchain; `make` runs here too, so the Makefile is what is tested."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from string import Template

from edgeprune.errors import EdgepruneError, ModelTooLargeError
from edgeprune.targets import TARGETS_DIR, Target, require_program


_OVERFLOW = re.compile(r"region [`'](\w+)' overflowed by (\d+) bytes")
_REGION_NAMES = {"FLASH": "flash", "RAM": "RAM", "WEIGHTS": "weight flash"}


def _template(target: Target, name: str) -> Template | None:
    path = target.runtime_dir / name
    return Template(path.read_text()) if path.is_file() else None


def linker_script(target: Target, stack_bytes: int) -> str:
    template = _template(target, "linker.ld.in")
    weights = target.weights
    return template.substitute(
        board=target.name,
        flash_origin=hex(target.flash.origin), flash_length=hex(target.flash.length),
        ram_origin=hex(target.ram.origin), ram_length=hex(target.ram.length),
        weights_memory=(f"  WEIGHTS (r) : ORIGIN = {weights.origin:#x}, LENGTH = {weights.length:#x}\n"
                        if weights else ""),
        weights_region="WEIGHTS" if weights else "FLASH",
        stack_bytes=stack_bytes,
    )


def write_project(folder: Path, target: Target, kernels_file: str, stack_bytes: int) -> None:
    """Everything but the generated sources: runtime, linker script, Makefile, from the board
    family's folder (targets/<family>/: *.c, *.h, Makefile.in and, for bare metal, linker.ld.in)
    and the drivers the board file names (timer, UART, setup)."""
    runtime = folder / "runtime"
    runtime.mkdir(parents=True, exist_ok=True)
    for source_dir in (target.runtime_dir, TARGETS_DIR / "aot"):
        for path in source_dir.glob("*.[ch]"):
            shutil.copy2(path, runtime / path.name)
    for path in target.drivers:
        shutil.copy2(path, runtime / path.name)
    protocol = runtime / "protocol"  # the profiling protocol (targets/runtime), for apps that speak it
    protocol.mkdir(exist_ok=True)
    for path in (TARGETS_DIR / "runtime").glob("*.[ch]"):
        shutil.copy2(path, protocol / path.name)
    if _template(target, "linker.ld.in"):
        (folder / "linker.ld").write_text(linker_script(target, stack_bytes))
    (folder / "Makefile").write_text(_template(target, "Makefile.in").substitute(
        board=target.name, description=target.description, gcc=target.gcc,
        cflags=" ".join(target.cflags + target.c_defines), kernels=kernels_file,
    ))


def build(folder: Path, target: Target, *make_variables: str) -> Path:
    """Run make (variables such as SOURCES=... override the Makefile's); a linker overflow
    becomes ModelTooLargeError saying by how much."""
    require_program(target.gcc)
    require_program("make")
    jobs = f"-j{os.cpu_count() or 1}"  # one object per source (ccache gives most of them)
    result = subprocess.run(["make", "-s", jobs, "-C", str(folder), *make_variables], capture_output=True, text=True)
    if result.returncode != 0:
        overflows = _OVERFLOW.findall(result.stderr)
        if overflows:
            detail = "; ".join(
                f"{_REGION_NAMES.get(region, region)} by {int(n):,} bytes" for region, n in overflows
            )
            raise ModelTooLargeError(
                f"the model does not fit {target.name} (flash {target.flash.length:,} bytes, "
                f"RAM {target.ram.length:,} bytes): it overflows {detail}; prune or quantize it "
                "(edgeprune prune / quantize) or choose a larger board"
            )
        hint = ("\nccache failed (its cache directory?): build without it by setting CCACHE= in the "
                "environment" if "ccache: error" in result.stderr else "")
        raise EdgepruneError(f"building the firmware failed:\n{result.stderr[-4000:]}{hint}")
    return folder / "firmware.elf"


PROFILE_APP = "profile.elf"


def build_profile_app(firmware_dir: Path, target: Target) -> Path:
    """`make profile.elf` (the protocol firmware) in a compiled-model folder; a no-op when it is
    up to date."""
    if target.uart_base is None:
        raise EdgepruneError(f"board {target.name} has no UART for the profiling protocol: add "
                             f"`[uart] base = 0x...` and `driver = \"...\"` (a drivers/uart_<driver>.c, "
                             f"see {target.runtime_dir / 'drivers'}) to {target.source}")
    if not (firmware_dir / "src" / "ep_model_desc.c").is_file():
        raise EdgepruneError(f"{firmware_dir} has no src/ep_model_desc.c (compiled by an older "
                             "edgeprune); compile the model again to profile it")
    build(firmware_dir, target, PROFILE_APP)
    return firmware_dir / PROFILE_APP
