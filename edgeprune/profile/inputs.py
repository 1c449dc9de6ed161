"""What a compiled model is checked with: seeded inputs, and the reference outputs (onnxruntime,
or TFLM's interpreter for a model compiled from a `.tflite`)."""
from __future__ import annotations

import numpy as np

from edgeprune.compile.api import CompiledModel
from edgeprune.reference import reference_outputs, tflm_outputs


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
