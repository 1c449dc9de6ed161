"""Data sets: scikit-learn's 8x8 digits (offline) shaped for any zoo model, and user `.npz` files."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from edgeprune.errors import EdgepruneError

SPLIT_SEED = 0


class DataError(EdgepruneError):
    """A data file or array that does not fit the model."""


@dataclass
class Dataset:
    """Train/validation/test arrays: x float32 shaped like the model input minus batch, y int64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def num_classes(self) -> int:
        return int(max(y.max() for y in (self.y_train, self.y_val, self.y_test) if len(y))) + 1


def split(x: np.ndarray, y: np.ndarray, val_fraction: float = 0.2, test_fraction: float = 0.2,
          seed: int = SPLIT_SEED) -> Dataset:
    """Stratified, seeded split into train, validation and test."""
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y)
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=val_fraction / (1 - test_fraction), random_state=seed,
        stratify=y_rest)
    return Dataset(x_train, y_train, x_val, y_val, x_test, y_test)


def reshape_images(images: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Fit (N, H, W) images in [0, 1] to a per-sample `shape`.

    (C, H, W): bilinear resize to HxW, channels repeated C times. (F,): flattened and tiled to F
    features (zero padded if F is not a multiple of H*W).
    """
    if len(shape) == 3:
        channels, height, width = shape
        resized = F.interpolate(torch.from_numpy(images)[:, None], size=(height, width),
                                mode="bilinear", align_corners=False)
        return resized.repeat(1, channels, 1, 1).numpy()
    if len(shape) == 1:
        flat = images.reshape(len(images), -1)
        tiled = np.tile(flat, (1, math.ceil(shape[0] / flat.shape[1])))[:, :shape[0]]
        return tiled
    raise DataError(f"cannot shape digits for input shape {shape}; expected (C, H, W) or (F,)")


def digits_classes(num_outputs: int | None) -> int:
    """Classes of the digits task for a model with `num_outputs`: the binary task for 2, else 10."""
    return 2 if num_outputs == 2 else 10


def describe_digits(input_shape: tuple[int, ...], num_classes: int = 10) -> str:
    """How `digits(input_shape, num_classes)` shapes the 8x8 images, in a few words."""
    sample = tuple(input_shape[1:])
    if sample == (1, 8, 8):
        shaped = "digits (8x8)"
    elif len(sample) == 3:
        shaped = f"digits resized to {sample[1]}x{sample[2]}" + (f", {sample[0]} channels" if sample[0] > 1 else "")
    else:
        shaped = f"digits tiled to {sample[0]} features"
    return shaped + (", binary (digit < 5)" if num_classes == 2 else "")


def digits(input_shape: tuple[int, ...] = (1, 1, 8, 8), num_classes: int = 10,
           seed: int = SPLIT_SEED) -> Dataset:
    """scikit-learn's digits scaled to [0, 1], shaped for a model input with batch dim.

    With `num_classes=2` the task is binary: label 1 for digits < 5 (e.g. for the VWW model).
    """
    if num_classes not in (2, 10):
        raise DataError(f"digits has 10 classes or a binary 'digit < 5' task, not {num_classes}")
    raw = load_digits()
    images = (raw.images / 16.0).astype(np.float32)
    x = reshape_images(images, tuple(input_shape[1:])).astype(np.float32)
    ds = split(x, raw.target.astype(np.int64), seed=seed)  # same samples whatever the task
    if num_classes == 2:
        ds = replace(ds, **{key: (getattr(ds, key) < 5).astype(np.int64)
                            for key in ("y_train", "y_val", "y_test")})
    return ds


def synthetic_anomalies(x: np.ndarray, fraction: float = 0.25, seed: int = SPLIT_SEED) -> np.ndarray:
    """Anomalous copies of samples `x`: a random `fraction` of each sample's features replaced by
    uniform noise over the data's range (a stand-in for a machine's unusual sounds)."""
    rng = np.random.default_rng(seed)
    flat = x.reshape(len(x), -1).copy()
    hit = rng.random(flat.shape) < fraction
    flat[hit] = rng.uniform(x.min(), x.max(), int(hit.sum()))
    return flat.reshape(x.shape).astype(np.float32)


def anomaly_task(ds: Dataset, seed: int = SPLIT_SEED) -> Dataset:
    """An anomaly detection task from `ds`: its training samples are the normal ones (label 0);
    validation and test hold their samples (0) and as many synthetic anomalies (1)."""
    def with_anomalies(x: np.ndarray, offset: int) -> tuple[np.ndarray, np.ndarray]:
        both = np.concatenate([x, synthetic_anomalies(x, seed=seed + offset)])
        return both, np.repeat(np.array([0, 1], np.int64), len(x))

    return Dataset(ds.x_train, np.zeros(len(ds.x_train), np.int64), *with_anomalies(ds.x_val, 1),
                   *with_anomalies(ds.x_test, 2))


def load_npz(path: str | os.PathLike, input_shape: tuple[int, ...],
             seed: int = SPLIT_SEED) -> Dataset:
    """User data: an `.npz` with `x` (N, *input_shape[1:]) and integer labels `y` (N,)."""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            missing = {"x", "y"} - set(arrays.files)
            if missing:
                raise DataError(f"{path}: missing key(s) {sorted(missing)}; found {arrays.files}; "
                                "expected 'x' (samples) and 'y' (integer labels)")
            x, y = arrays["x"], arrays["y"]
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from exc
    expected = tuple(input_shape[1:])
    if tuple(x.shape[1:]) != expected:
        raise DataError(f"{path}: x has sample shape {tuple(x.shape[1:])}, model expects {expected}")
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"{path}: y must be 1-D with one label per sample; got shape {y.shape} "
                        f"for {len(x)} samples")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: y must hold integer class labels, got dtype {y.dtype}")
    try:
        return split(x.astype(np.float32), y.astype(np.int64), seed=seed)
    except ValueError as exc:  # too few samples of a class to stratify
        raise DataError(f"{path}: cannot split into train/validation/test: {exc}") from exc
