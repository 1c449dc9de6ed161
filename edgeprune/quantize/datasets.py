"""Data named on the command line or passed to the API: `digits`, a user `.npz`, or an array."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edgeprune.models import data
from edgeprune.models.data import Dataset
from edgeprune.quantize.calibration import check_samples
from edgeprune.quantize.errors import CalibrationDataError

DataSpec = str | os.PathLike | np.ndarray


def describe(spec: DataSpec) -> str:
    """How the report names a data source."""
    return f"array {tuple(spec.shape)}" if isinstance(spec, np.ndarray) else str(spec)


def load(spec: str | os.PathLike, input_shape: tuple[int, ...], outputs: int | None) -> Dataset:
    """`digits` shaped for `input_shape` (binary task for 2-output models) or an `.npz` (x, y)."""
    if str(spec) == "digits":
        return data.digits(input_shape, data.digits_classes(outputs))
    path = Path(spec)
    if path.suffix != ".npz" or not path.is_file():
        raise CalibrationDataError(f"data {str(spec)!r}: expected 'digits' or an existing .npz "
                                   "file with arrays x (samples) and y (labels)")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            x = arrays["x"] if "x" in arrays.files else None
    except (OSError, ValueError):  # load_npz explains unreadable files
        x = None
    if x is not None:  # load_npz would cast integer pixels to float silently
        check_samples(x, input_shape, f"{path}: x")
    return data.load_npz(path, input_shape)


def calibration_samples(spec: DataSpec, input_shape: tuple[int, ...],
                        outputs: int | None) -> np.ndarray:
    """Calibration samples: an array as given, else the training split of the named data."""
    if isinstance(spec, np.ndarray):
        return check_samples(spec, input_shape)
    return check_samples(load(spec, input_shape, outputs).x_train, input_shape)
