"""`edgeprune run`: a compiled model on QEMU, checked against onnxruntime on the host. The board's
family picks the emulator: qemu-system for bare-metal boards, qemu-user for Linux (Cortex-A) ones."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeprune.compile.api import CompiledModel
from edgeprune.errors import EdgepruneError
from edgeprune.profile.qemu import QemuRun, run_on_qemu
from edgeprune.reference import max_abs_error, reference_outputs, relative_error, tflm_outputs
from edgeprune.targets import Target, load_target


@dataclass
class RunReport:
    compiled: CompiledModel
    inputs: list[np.ndarray]
    device: QemuRun
    reference: list[np.ndarray]

    @property
    def max_abs_error(self) -> float:
        return max_abs_error(self.device.outputs, self.reference)

    @property
    def relative_error(self) -> float:
        return relative_error(self.device.outputs, self.reference)

    @property
    def reference_name(self) -> str:
        return reference_name(self.compiled)

    @property
    def exact_matches(self) -> tuple[int, int]:
        """(elements equal to the reference, elements) over all outputs."""
        return (sum(int(np.sum(d == r)) for d, r in zip(self.device.outputs, self.reference)),
                sum(int(r.size) for r in self.reference))


def reference_name(model: CompiledModel) -> str:
    return "TFLM" if model.manifest.get("frontend") == "tflite" else "onnxruntime"


def _int8_edge(entry: dict) -> tuple[float, int]:
    """(scale, zero point) of a manifest tensor; a float edge keeps its int8 tensor's under "int8"."""
    quantized = entry.get("int8", entry)
    return quantized["scale"], quantized["zero_point"]


def model_reference(model: CompiledModel, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """The reference outputs of a compiled model: TFLM's interpreter for a `.tflite`, else onnxruntime."""
    if model.manifest.get("frontend") == "tflite":
        edges = [[_int8_edge(e) for e in model.manifest[side]] for side in ("inputs", "outputs")]
        return tflm_outputs(model.source, inputs, *edges, declared=True)
    return reference_outputs(model.onnx, inputs)


def random_inputs(manifest: dict, seed: int = 0) -> list[np.ndarray]:
    """Seeded inputs: int8 over its range; float32 standard normal, or over the range of the int8
    tensor inside a float edge (a little beyond, so that the quantize saturates too)."""
    rng = np.random.default_rng(seed)

    def one(spec: dict) -> np.ndarray:
        if spec["dtype"] == "int8":
            return rng.integers(-128, 128, spec["shape"]).astype(np.int8)
        if "int8" in spec:
            scale, zero_point = spec["int8"]["scale"], spec["int8"]["zero_point"]
            return rng.uniform(scale * (-132 - zero_point), scale * (131 - zero_point), spec["shape"]).astype(np.float32)
        return rng.standard_normal(spec["shape"]).astype(spec["dtype"])
    return [one(spec) for spec in manifest["inputs"]]


def _run_on_device(target: Target, model: CompiledModel, inputs: list[np.ndarray], runs: int,
                   timeout: float, cpu: str | None) -> QemuRun:
    outputs = model.manifest["outputs"]
    if target.family == "linux":
        from edgeprune.profile.qemu_user import run_on_qemu_user

        return run_on_qemu_user(target, model.elf, inputs, outputs, runs=runs, timeout=timeout, cpu=cpu)
    if cpu is not None:
        raise EdgepruneError(f"choosing another core (cpu={cpu!r}) works for qemu-user boards only, not {target.name}")
    return run_on_qemu(target, model.elf, inputs, outputs, runs=runs, timeout=timeout)


def run(
    compiled: str | Path | CompiledModel, inputs: list[np.ndarray] | None = None, *,
    runs: int = 1, seed: int = 0, timeout: float = 120.0, cpu: str | None = None,
) -> RunReport:
    """Run the firmware on QEMU (bare metal: `-icount shift=0`; Linux boards: qemu-user with the
    instruction-counting plugin, optionally on another core `cpu`) and compare with the reference
    (onnxruntime, or TFLM's interpreter for a model compiled from a `.tflite`)."""
    model = compiled if isinstance(compiled, CompiledModel) else CompiledModel.load(compiled)
    inputs = inputs if inputs is not None else random_inputs(model.manifest, seed)
    target = load_target(model.manifest["board"])
    device = _run_on_device(target, model, inputs, runs, timeout, cpu)
    return RunReport(model, inputs, device, model_reference(model, inputs))
