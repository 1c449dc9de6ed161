"""Compile a candidate and measure it on a device: the one place the search touches hardware.

The device is a URL of `edgeprune profile --device` (qemu:, qemu-user:, serial:, socket:, ssh:),
opened through `profile.devices.open_device`; the candidate runs once, as `edgeprune profile`
runs it, and its outputs are checked against the reference. The measurement is a record in the
results store, found again by its architecture hash: the search's cache is a query on the store.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgeprune.compile.api import CompiledModel, compile_model
from edgeprune.compile.int8 import has_dsp
from edgeprune.errors import EdgepruneError
from edgeprune.profile.api import profile
from edgeprune.profile.devices import open_device, parse_device_url
from edgeprune.profile.store import Record, ResultsStore
from edgeprune.search.errors import SearchError
from edgeprune.targets import load_target

# Part of the cache key: measurements taken another way are not mixed with these. The search
# measured over QEMU semihosting until it ran through open_device (QEMU's UART protocol
# firmware), whose figures differ by a few instructions (digits_cnn on the M4: 1,052,960 -> 1,053,000).
MEASURED_THROUGH = "open_device"


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

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_record(cls, record: Record) -> Measurement:
        """The search's view of a results-store record (one run)."""
        return cls(record.median, [value for _, value in record.layers], record.memory.flash_total,
                   record.memory.ram_total, record.relative_error, record.unit, record.method or "",
                   [name for name, _ in record.layers])


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


def device_unit(device: str) -> tuple[str, str]:
    """(unit, method) of the device's figures, known before anything runs on it."""
    try:
        with open_device(device) as opened:
            return opened.unit, opened.method
    except EdgepruneError as exc:
        raise SearchError(str(exc)) from exc


def device_has_dsp(device: str) -> bool:
    """Whether the device's core has the DSP extension, so that its int8 kernels are the DSP ones."""
    return has_dsp(load_target(board_of(device)).llvm_target())


def compile_for(onnx_path: Path, device: str, out: Path) -> CompiledModel:
    """Compile `onnx_path` for the device's board into the firmware folder `out`."""
    return compile_model(str(onnx_path), board_of(device), out)


def measure(onnx_path: Path, device: str, out: Path, *, store: Path | None = None,
            architecture: str | None = None) -> Measurement:
    """Compile `onnx_path` into `out` and profile it once on `device`; the record, with the
    candidate's `architecture` hash, goes to the results file `store` (None: kept nowhere)."""
    compiled = compile_for(onnx_path, device, out)
    report = profile(compiled, device, runs=1, store=False if store is None else store,
                     architecture=architecture)
    return Measurement.from_record(report.record)


def stored_measurement(store: Path, architecture: str) -> Measurement | None:
    """The newest measurement of `architecture` in the results file `store`, if any."""
    with ResultsStore(store) as results:
        records = results.find(architecture=architecture)
    return Measurement.from_record(records[0]) if records else None
