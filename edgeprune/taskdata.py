"""A task's data read into arrays: `(x, y)` pairs of arrays or tensors, `x` alone, `.npz` files
with `x` (and `y`), torch `Dataset`s and `DataLoader`s; checked against the model input."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader

from edgeprune.errors import TaskError
from edgeprune.models.data import SPLIT_SEED

Data = Any  # (x, y), x, an .npz path, a torch Dataset or DataLoader
VALIDATION_FRACTION = 0.2


def _array(value: Any) -> np.ndarray:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def _batches(loader: DataLoader, what: str) -> tuple[np.ndarray, np.ndarray | None]:
    xs, ys = [], []
    for batch in loader:
        if isinstance(batch, (tuple, list)):
            if len(batch) != 2:
                raise TaskError(f"task.{what}: batches must be (x, y) or x, got {len(batch)} items")
            xs.append(_array(batch[0]))
            ys.append(_array(batch[1]))
        else:
            xs.append(_array(batch))
    if not xs:
        raise TaskError(f"task.{what}: the data set is empty")
    return np.concatenate(xs), np.concatenate(ys) if ys else None


def read(source: Data, what: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(x, y or None) of one data source (see the module's docstring)."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.suffix != ".npz" or not path.is_file():
            raise TaskError(f"task.{what}: {str(source)!r} is not an existing .npz file")
        try:
            with np.load(path, allow_pickle=False) as arrays:
                if "x" not in arrays.files:
                    raise TaskError(f"task.{what}: {path} has no array 'x' (found {arrays.files})")
                return arrays["x"], arrays["y"] if "y" in arrays.files else None
        except (OSError, ValueError) as exc:
            raise TaskError(f"task.{what}: {path} is not a readable .npz file ({exc})") from exc
    if isinstance(source, tuple):
        if len(source) != 2:
            raise TaskError(f"task.{what}: a tuple must be (x, y), got {len(source)} items")
        return _array(source[0]), _array(source[1])
    if isinstance(source, (np.ndarray, torch.Tensor)):
        return _array(source), None
    if isinstance(source, DataLoader):
        return _batches(source, what)
    if isinstance(source, torch.utils.data.Dataset):
        return _batches(DataLoader(source, batch_size=256), what)
    raise TaskError(f"task.{what} is a {type(source).__name__}; give (x, y), x, an .npz path, "
                    "or a torch Dataset or DataLoader")


def samples(x: np.ndarray, y: np.ndarray | None, shape: tuple[int, ...],
             what: str) -> tuple[np.ndarray, np.ndarray | None]:
    """`x` as float32 (N, *shape[1:]) and `y` as one label per sample; else a TaskError."""
    if tuple(x.shape[1:]) != tuple(shape[1:]) or x.ndim != len(shape):
        raise TaskError(f"task.{what}: samples have shape {tuple(x.shape)}; the model input "
                        f"{tuple(shape)} needs (N, {', '.join(map(str, shape[1:]))})")
    if not np.issubdtype(x.dtype, np.floating):
        raise TaskError(f"task.{what}: x has dtype {x.dtype}; give float samples scaled as the "
                        "model expects them")
    if len(x) == 0:
        raise TaskError(f"task.{what}: no samples")
    if y is not None and (y.ndim != 1 or len(y) != len(x)):
        raise TaskError(f"task.{what}: y has shape {tuple(y.shape)}; it needs one label per "
                        f"sample ({len(x)},)")
    if y is not None and np.issubdtype(y.dtype, np.integer):
        y = y.astype(np.int64)
    return x.astype(np.float32, copy=False), y


def split_validation(x: np.ndarray, y: np.ndarray | None) -> tuple[np.ndarray | None, ...]:
    """(x_train, y_train, x_val, y_val): 20 % split off for validation, seeded, stratified by
    integer labels (labels stay None without `y`)."""
    stratify = None
    if y is not None and np.issubdtype(y.dtype, np.integer) and min(np.unique(y, return_counts=True)[1]) >= 2:
        stratify = y
    try:
        parts = train_test_split(*([x] if y is None else [x, y]), test_size=VALIDATION_FRACTION,
                                 random_state=SPLIT_SEED, stratify=stratify)
    except ValueError as exc:
        raise TaskError(f"task.train: cannot split off a validation part ({exc}); give "
                        "task.validation") from exc
    if y is None:
        return parts[0], None, parts[1], None
    x_train, x_val, y_train, y_val = parts
    return x_train, y_train, x_val, y_val
