"""Flash and RAM of a firmware ELF by category (weights, kernels, runtime, libc, arena, ...).

Read from the symbol table with pyelftools. A symbol's section decides where its bytes live:
read-only allocated sections are flash, writable ones with contents (.data) are RAM plus their
initialiser in flash, NOBITS ones (.bss, .stack) are RAM only. Bytes of a section that no sized
symbol covers (alignment, vector padding, unnamed assembly) are counted as `unattributed`, so the
categories always add up to the totals.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile

from edgeprune.errors import EdgepruneError

CATEGORIES = ("weights", "kernels", "runtime", "libc", "arena", "workspace", "stack", "other",
              "unattributed")
WEIGHT_PREFIX = "edgeprune_weight_"
ARENA_SYMBOL = "edgeprune_arena"
WORKSPACE_SYMBOL = "edgeprune_workspace"
RUNTIME_PREFIXES = ("ep_", "edgeprune_")
STACK_SECTION = ".stack"
STACK_SIZE_SYMBOL = "__stack_size"


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes per category in flash and in RAM; each dict has every name of CATEGORIES. `arena`, if
    known, is the compiled model's arena over its steps (the manifest's memory.arena), for the
    memory report."""

    flash: dict[str, int]
    ram: dict[str, int]
    arena: dict | None = None

    @property
    def flash_total(self) -> int:
        return sum(self.flash.values())

    @property
    def ram_total(self) -> int:
        return sum(self.ram.values())

    def to_dict(self) -> dict:
        arena = {"arena": self.arena} if self.arena is not None else {}
        return {"flash": dict(self.flash), "ram": dict(self.ram),
                "flash_total": self.flash_total, "ram_total": self.ram_total, **arena}

    @classmethod
    def from_dict(cls, data: dict) -> MemoryBreakdown:
        return cls(flash=dict(data["flash"]), ram=dict(data["ram"]), arena=data.get("arena"))


@dataclass(frozen=True)
class _Symbol:
    name: str
    kind: str  # STT_FUNC or STT_OBJECT
    address: int
    size: int
    section: int
    file: str | None  # the STT_FILE a local symbol follows; None for globals


def memory_breakdown(elf_path: Path, kernel_functions: Iterable[str] = (),
                     kernel_files: Iterable[str] = ()) -> MemoryBreakdown:
    """Flash and RAM by category of the ELF at `elf_path`.

    `kernel_functions` are the model's operator functions; local functions and data of the files
    that define a local kernel function, or that `kernel_files` names (STT_FILE names such as
    "lib0.c"), count as kernels too.
    """
    flash = dict.fromkeys(CATEGORIES, 0)
    ram = dict.fromkeys(CATEGORIES, 0)
    with open(elf_path, "rb") as stream:
        try:
            elf = ELFFile(stream)
        except Exception as exc:  # pyelftools raises several unrelated types on non-ELF input
            raise EdgepruneError(f"{elf_path} is not an ELF file: {exc}") from exc
        symtab = elf.get_section_by_name(".symtab")
        if symtab is None:
            raise EdgepruneError(f"{elf_path} has no symbol table (was it stripped?)")
        symbols = _sized_symbols(symtab)
        kernels = set(kernel_functions)
        files = set(kernel_files) | {s.file for s in symbols if s.name in kernels and s.file}
        stack_size_symbol = symtab.get_symbol_by_name(STACK_SIZE_SYMBOL)
        has_stack_section = False
        for index, section in enumerate(elf.iter_sections()):
            if not section["sh_flags"] & SH_FLAGS.SHF_ALLOC or section["sh_size"] == 0:
                continue
            in_flash, in_ram = _placement(section)
            if section.name == STACK_SECTION:
                has_stack_section = True
                sizes = {"stack": section["sh_size"]}
            else:
                writable = bool(section["sh_flags"] & SH_FLAGS.SHF_WRITE)
                sizes = _section_sizes(section, [s for s in symbols if s.section == index],
                                       kernels, files, writable)
            for category, size in sizes.items():
                flash[category] += size if in_flash else 0
                ram[category] += size if in_ram else 0
        if not has_stack_section and stack_size_symbol:
            ram["stack"] += stack_size_symbol[0]["st_value"]
    return MemoryBreakdown(flash=flash, ram=ram)


def _sized_symbols(symtab) -> list[_Symbol]:
    """Functions and objects with a size, each local one tagged with the file it follows."""
    symbols, current_file = [], None
    for sym in symtab.iter_symbols():
        kind, bind = sym["st_info"]["type"], sym["st_info"]["bind"]
        if kind == "STT_FILE":
            current_file = sym.name
            continue
        shndx = sym["st_shndx"]
        if kind not in ("STT_FUNC", "STT_OBJECT") or sym["st_size"] == 0 or not isinstance(shndx, int):
            continue
        address = sym["st_value"] & ~1 if kind == "STT_FUNC" else sym["st_value"]  # Thumb bit
        symbols.append(_Symbol(sym.name, kind, address, sym["st_size"], shndx,
                               current_file if bind == "STB_LOCAL" else None))
    return symbols


def _placement(section) -> tuple[bool, bool]:
    """(in flash, in RAM): writable sections live in RAM, and load from flash if they have bytes."""
    writable = bool(section["sh_flags"] & SH_FLAGS.SHF_WRITE)
    has_bytes = section["sh_type"] != "SHT_NOBITS"
    return has_bytes, writable


def _section_sizes(section, symbols: list[_Symbol], kernels: set[str], files: set[str],
                   writable: bool) -> dict[str, int]:
    """Bytes per category inside one section; overlaps and aliases are counted once."""
    sizes: dict[str, int] = {}
    start, end = section["sh_addr"], section["sh_addr"] + section["sh_size"]
    covered_to = start
    for sym in sorted(symbols, key=lambda s: (s.address, -s.size)):
        lo, hi = max(sym.address, covered_to), min(sym.address + sym.size, end)
        if hi <= lo:
            continue
        category = _category(sym, kernels, files, writable)
        sizes[category] = sizes.get(category, 0) + hi - lo
        covered_to = hi
    unattributed = section["sh_size"] - sum(sizes.values())
    if unattributed:
        sizes["unattributed"] = unattributed
    return sizes


def _category(sym: _Symbol, kernels: set[str], files: set[str], writable: bool) -> str:
    if sym.name.startswith(WEIGHT_PREFIX):
        return "weights"
    if sym.name == ARENA_SYMBOL:
        return "arena"
    if sym.name == WORKSPACE_SYMBOL:
        return "workspace"
    if sym.name in kernels or (sym.file is not None and sym.file in files):
        return "kernels"
    if sym.name.startswith(RUNTIME_PREFIXES):
        return "runtime"
    return "other" if writable else "libc"
