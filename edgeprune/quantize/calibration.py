"""Calibration: validated float32 samples fed one at a time to onnxruntime's calibrators."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from onnxruntime.quantization import CalibrationDataReader
from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data

from edgeprune.quantize.defaults import DEFAULT_SAMPLES
from edgeprune.quantize.errors import CalibrationDataError
from edgeprune.quantize.settings import CALIBRATOR_OPTIONS, METHODS


def check_samples(x: np.ndarray, input_shape: tuple[int, ...],
                  what: str = "calibration data") -> np.ndarray:
    """`x` as float32 (N, *input_shape[1:]); else CalibrationDataError naming both shapes/dtypes."""
    x = np.asarray(x)
    if x.ndim != len(input_shape) or tuple(x.shape[1:]) != tuple(input_shape[1:]):
        raise CalibrationDataError(
            f"{what} has shape {tuple(x.shape)}; the model input {tuple(input_shape)} needs "
            f"(N, {', '.join(map(str, input_shape[1:]))})")
    if not np.issubdtype(x.dtype, np.floating):
        raise CalibrationDataError(
            f"{what} has dtype {x.dtype}; the model input is float32 (give samples scaled "
            "as during training, e.g. x.astype(np.float32) / 255)")
    if len(x) == 0:
        raise CalibrationDataError(f"{what} has no samples")
    return x.astype(np.float32, copy=False)


class ArrayReader(CalibrationDataReader):
    """Feeds the first `samples` rows of `x` to input `input_name`, one (batch 1) per call."""

    def __init__(self, x: np.ndarray, input_name: str, samples: int = DEFAULT_SAMPLES):
        if samples < 1:
            raise CalibrationDataError(f"need at least one calibration sample, got {samples}")
        self.x = x[:samples]
        self.input_name = input_name
        self.position = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.position >= len(self.x):
            return None
        sample = self.x[self.position:self.position + 1]
        self.position += 1
        return {self.input_name: sample}

    def __len__(self) -> int:
        return len(self.x)


def calibrate(model: Path, reader: CalibrationDataReader, method: str, scratch: Path) -> Path:
    """Run onnxruntime's calibrator for `method` on `model`; returns the saved tensor ranges
    (a calibration cache for `quantize_static(..., calibration_cache_path=...)`)."""
    calibrator = create_calibrator(
        model, None, augmented_model_path=str(scratch / "augmented.onnx"),
        calibrate_method=METHODS[method], providers=["CPUExecutionProvider"],
        extra_options=CALIBRATOR_OPTIONS[method])
    calibrator.collect_data(reader)
    cache = scratch / f"ranges-{method}.json"
    save_tensors_data(calibrator.compute_data(), cache)
    return cache
