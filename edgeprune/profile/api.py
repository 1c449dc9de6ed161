"""`edgeprune.profile(...)`: measure a compiled model on a device, check its outputs against
the reference (onnxruntime, or TFLM's interpreter), keep the record in the results store and
optionally write it as JSON. `edgeprune run` is a profile with one run and no store. A record
carries the compiled graph's architecture hash and the compiler's fingerprint, by which a search
finds it again (`edgeprune.search.measure`)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from edgeprune._atomic import write_text_atomic
from edgeprune.artefact import architecture_hash, content_hash
from edgeprune.compile.api import CompiledModel, step_label
from edgeprune.compile.elfsize import MemoryBreakdown
from edgeprune.errors import DeviceError, EdgepruneError
from edgeprune.profile.defaults import DEFAULT_DEVICE
from edgeprune.profile.devices import Measurement, open_device, parse_device_url
from edgeprune.profile.inputs import model_reference, random_inputs, reference_name
from edgeprune.profile.store import Record, ResultsStore
from edgeprune.reference import max_abs_error, output_errors, relative_error

FLOAT_RTOL = 1e-4  # largest error relative to the output's largest magnitude
INT_ATOL = 1       # quantized outputs: one step


@dataclass
class ProfileReport:
    """A measurement with its reference check; `record` is what the store holds."""

    compiled: CompiledModel
    inputs: list[np.ndarray]
    measurement: Measurement
    reference: list[np.ndarray]
    record: Record
    method: str  # how the figures were measured

    @property
    def relative_error(self) -> float:
        return relative_error(self.measurement.outputs, self.reference)

    @property
    def max_abs_error(self) -> float:
        return max_abs_error(self.measurement.outputs, self.reference)

    @property
    def reference_name(self) -> str:
        """"TFLM" for a model compiled from a `.tflite`, else "onnxruntime"."""
        return reference_name(self.compiled)

    @property
    def exact_matches(self) -> tuple[int, int]:
        """(elements equal to the reference, elements) over all outputs."""
        return (sum(int(np.sum(d == r)) for d, r in zip(self.measurement.outputs, self.reference)),
                sum(int(r.size) for r in self.reference))

    @property
    def layer_coverage(self) -> float:
        """Sum of the per-layer figures over the last run's total (1.0: the layers cover it all)."""
        total = self.measurement.run_ticks[-1]
        return sum(self.measurement.layer_ticks) / total if total else float("nan")

    def to_dict(self) -> dict:
        return {**self.record.to_dict(), "model": self.compiled.manifest.get("model"),
                "folder": str(self.compiled.path), "method": self.method,
                "relative_error": self.relative_error, "layer_coverage": self.layer_coverage,
                "outputs": [o.tolist() for o in self.measurement.outputs]}


def outputs_match(outputs: list[np.ndarray], reference: list[np.ndarray]) -> tuple[bool, float]:
    """Whether the device's outputs agree with the reference, and the largest absolute error."""
    match = all(
        error <= (INT_ATOL if np.issubdtype(device.dtype, np.integer) else FLOAT_RTOL * max(scale, 1e-30))
        for device, (error, scale) in zip(outputs, output_errors(outputs, reference))
    )
    return match, max_abs_error(outputs, reference)


def model_architecture(model: CompiledModel) -> str | None:
    """The architecture hash of the graph `model` compiles (None for a `.tflite`)."""
    return None if model.manifest.get("frontend") == "tflite" else architecture_hash(onnx.load(model.onnx))


def profile(
    compiled: str | Path | CompiledModel, device: str = DEFAULT_DEVICE, *, runs: int = 5,
    inputs: list[np.ndarray] | None = None, seed: int = 0, store: str | Path | bool | None = None,
    json_path: str | Path | None = None, **device_options,
) -> ProfileReport:
    """Profile `compiled` on `device` (`runs` inferences): outputs vs onnxruntime, per-run and
    per-layer figures, stack, memory. `store`: a results file, None for the default one, False
    for none. A failed run stores nothing."""
    if runs < 1:
        raise EdgepruneError(f"runs must be at least 1, not {runs}")
    model = compiled if isinstance(compiled, CompiledModel) else CompiledModel.load(compiled)
    url = parse_device_url(device)
    board = model.manifest["board"]
    if url.board is not None and url.board != board:
        raise EdgepruneError(f"{model.path} is compiled for {board}, not {url.board}; compile it for "
                             f"{url.board} or profile it on {board}")
    inputs = inputs if inputs is not None else random_inputs(model.manifest, seed)
    model_hash = content_hash(model.source)
    with open_device(url, **device_options) as dev:
        dev.prepare(model.path)
        measurement = dev.run(inputs, runs)
    if measurement.model_id != model_hash:
        raise DeviceError(f"{url.text} runs another model ({measurement.model_id[:12]}), not "
                          f"{model.path} ({model_hash[:12]}); flash its profile.elf")
    names = [step_label(step) for step in model.manifest["steps"]]
    reference = model_reference(model, inputs)
    match, error = outputs_match(measurement.outputs, reference)
    method = dev.method
    record = Record.from_measurement(
        measurement, model_hash=model_hash, options=model.manifest["options"], device=url.text,
        layer_names=names, memory=MemoryBreakdown.from_dict(
            {**model.manifest["elf"], "arena": model.manifest["memory"].get("arena")}),
        outputs_match=match, max_abs_error=error, method=method, architecture=model_architecture(model),
        relative_error=relative_error(measurement.outputs, reference),
        compiler=model.manifest.get("compiler"))
    if store is not False:
        with ResultsStore(None if store in (None, True) else store) as results:
            record = results.get(results.add(record))
    report = ProfileReport(model, inputs, measurement, reference, record, method)
    if json_path is not None:
        write_text_atomic(Path(json_path), json.dumps(report.to_dict(), indent=2) + "\n")
    return report

