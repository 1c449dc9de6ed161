"""Compile a candidate and measure it on a device: the one place the search touches hardware.

The device is a URL of `edgeprune profile --device` (qemu:, qemu-user:, serial:, socket:, ssh:),
opened through `profile.devices.open_device`; the candidate runs once, as `edgeprune profile`
runs it, and its outputs are checked against the reference. The measurement is a record in the
results store that `edgeprune profile` writes to, found again by the compiled graph's architecture
hash, the compiler's fingerprint, the compile options and the device: the search's cache is a query
on that store, so a model profiled before is not measured again, and the search's records are
profile records (`edgeprune report` shows them).
"""
from __future__ import annotations

import inspect
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgeprune.artefact import architecture_hash
from edgeprune.compile.api import CompiledModel, compile_model, onnx_to_compile
from edgeprune.compile.fingerprint import compiler_fingerprint
from edgeprune.compile.int8 import has_dsp
from edgeprune.compile.patches import NoPatchStageError
from edgeprune.errors import EdgepruneError
from edgeprune.profile.api import profile
from edgeprune.profile.devices import open_device, parse_device_url
from edgeprune.profile.store import Record, ResultsStore
from edgeprune.search.errors import SearchError
from edgeprune.targets import load_target

PATCH_GRIDS = ("2x2", "3x3", "4x4")  # tried in order for a candidate over the RAM budget


@dataclass(frozen=True)
class Measurement:
    """Latency per inference and per kernel in the device's `unit`, and the ELF's flash and RAM."""

    latency: float
    layer_latency: list[float]
    flash_bytes: int
    ram_bytes: int
    relative_error: float  # device outputs vs the reference on random inputs
    unit: str = "instructions"  # "instructions" (QEMU), "cycles" (silicon), "ns" (wall clock)
    method: str = ""  # how the device measured, e.g. "QEMU, -icount shift=0"
    layer_names: list[str] = field(default_factory=list)  # each layer's label (`compile.api.step_label`)
    patch_grid: str | None = None  # the first stage ran in patches of this grid (`compile_for`)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_record(cls, record: Record) -> Measurement:
        """The search's view of a results-store record (one run)."""
        return cls(record.median, [value for _, value in record.layers], record.memory.flash_total,
                   record.memory.ram_total, record.relative_error, record.unit, record.method or "",
                   [name for name, _ in record.layers], (record.options or {}).get("patch_grid"))


def board_of(device: str) -> str:
    """The board (targets/<board>.toml) of a device URL, which the candidate is compiled for:
    qemu:BOARD, qemu-user:BOARD, or `?board=` on serial:, socket: and ssh: URLs."""
    url = parse_device_url(device)
    if not url.board:
        raise SearchError(f"device {device!r} names no board; add ?board=NAME (targets/NAME.toml) so "
                          "the search knows what to compile for")
    if url.scheme in ("qemu", "qemu-user"):
        linux = load_target(url.board).family == "linux"
        if linux != (url.scheme == "qemu-user"):
            kind, scheme = ("a Linux (Cortex-A)", "qemu-user") if linux else ("a bare-metal", "qemu")
            raise SearchError(f"device {device!r}: {url.board} is {kind} board; use {scheme}:{url.board}")
    return url.board


def device_unit(device: str, **options) -> tuple[str, str]:
    """(unit, method) of the device's figures, known before anything runs on it; `options` are
    open_device's."""
    try:
        with open_device(device, **options) as opened:
            return opened.unit, opened.method
    except EdgepruneError as exc:
        raise SearchError(str(exc)) from exc


def device_has_dsp(device: str) -> bool:
    """Whether the device's core has the DSP extension, so that its int8 kernels are the DSP ones."""
    return has_dsp(load_target(board_of(device)).llvm_target())


def compile_for(onnx_path: Path, device: str, out: Path, *, max_ram: int | None = None,
                patch_grid: str | None = None) -> CompiledModel:
    """Compile `onnx_path` for the device's board into the firmware folder `out`, with the
    default options (`compile_options`); with `patch_grid`, its first stage in those patches.
    A build over `max_ram` (the ELF's RAM, bytes) is made again with the first grid of
    PATCH_GRIDS that fits (the fewest patches: the least computed again); if none fits, or the
    model has no stage to run in patches, the build without patches stays (over the budget)."""
    board = board_of(device)
    compiled = compile_model(str(onnx_path), board, out, patch_grid=patch_grid)
    if max_ram is None or patch_grid is not None or _ram(compiled) <= max_ram:
        return compiled
    for grid in PATCH_GRIDS:
        trial_out = out.with_name(f"{out.name}-{grid}")
        try:
            patched = compile_model(str(onnx_path), board, trial_out, patch_grid=grid)
        except NoPatchStageError:
            return compiled
        if _ram(patched) <= max_ram:
            shutil.rmtree(out)
            return CompiledModel.load(trial_out.rename(out))
        shutil.rmtree(trial_out)
    return compiled


def _ram(compiled: CompiledModel) -> int:
    return compiled.manifest["elf"]["ram_total"]


def compile_options() -> dict:
    """The options `compile_for` writes into the manifest (compile_model's keyword defaults, but
    the input shape), known before anything is compiled."""
    parameters = inspect.signature(compile_model).parameters.values()
    return {p.name: p.default for p in parameters if p.kind is p.KEYWORD_ONLY and p.name != "input_shape"}


def candidate_architecture(onnx_path: Path) -> str:
    """The architecture hash `edgeprune profile` records for `onnx_path` compiled: the key of its
    measurements in the results store."""
    return architecture_hash(onnx_to_compile(str(onnx_path))[0])


def measure(onnx_path: Path, device: str, out: Path, *, store: Path | None = None, max_ram: int | None = None,
            **device_options) -> Measurement:
    """Compile `onnx_path` into `out` (in patches if over `max_ram`: `compile_for`) and profile it
    once on `device` (opened with `device_options`); the record (with its architecture hash and
    compiler fingerprint) goes to the results file `store` (None: kept nowhere)."""
    compiled = compile_for(onnx_path, device, out, max_ram=max_ram)
    report = profile(compiled, device, runs=1, store=False if store is None else store, **device_options)
    return Measurement.from_record(report.record)


def stored_measurement(store: Path, architecture: str, device: str, max_ram: int | None = None) -> Measurement | None:
    """The newest measurement in the results file `store` of a graph with this `architecture`
    hash, compiled by this compiler with `compile_options`, on `device`; None if there is none.
    With `max_ram`, the build `compile_for` would choose: without patches if within it, else the
    first grid of PATCH_GRIDS measured within it."""
    with ResultsStore(store) as results:
        for grid in (None, *PATCH_GRIDS) if max_ram else (None,):
            records = results.find(architecture=architecture, compiler=compiler_fingerprint(),
                                   options={**compile_options(), "patch_grid": grid}, device=device)
            if records and (max_ram is None or records[0].memory.ram_total <= max_ram):
                return Measurement.from_record(records[0])
    return None
