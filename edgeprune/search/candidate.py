"""One candidate: prune the base model, finetune briefly, quantize to int8, score on validation."""
from __future__ import annotations

import contextlib
import copy
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from torch import nn

from edgeprune.compile.fingerprint import compiler_fingerprint
from edgeprune.models import stats
from edgeprune.profile.defaults import DEFAULT_DEVICE
from edgeprune.models.data import Dataset
from edgeprune.models.export import to_onnx
from edgeprune.models.metrics import evaluate
from edgeprune.models.train import Recipe, train
from edgeprune.prune.structured import prune_channels
from edgeprune.quantize import quantize
from edgeprune.quantize.evaluate import session
from edgeprune.search import space
from edgeprune.search.errors import SearchError

PRECISIONS = ("int8", "fp32")


@dataclass(frozen=True)
class Settings:
    """How every candidate is made and measured (stored with the study; must match on resume)."""

    device: str = DEFAULT_DEVICE
    precision: str = "int8"  # fp32: a fallback that measures the float model, labelled as such
    criterion: str = "l1"
    round_to: int = 4
    max_ratio: float = 0.8
    step: float = 0.1
    finetune: Recipe = field(default_factory=lambda: Recipe(epochs=60, lr=5e-3, distill=0.8))
    calibration_samples: int = 300

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise SearchError(f"precision {self.precision!r}: use one of {', '.join(PRECISIONS)}")
        if not 0 < self.step <= self.max_ratio < 1:
            raise SearchError(f"need 0 < step ({self.step}) <= max ratio ({self.max_ratio}) < 1")

    def to_dict(self) -> dict:
        return {"device": self.device, "precision": self.precision, "criterion": self.criterion,
                "round_to": self.round_to, "max_ratio": self.max_ratio, "step": self.step,
                "finetune_epochs": self.finetune.epochs, "finetune_lr": self.finetune.lr,
                "distill": self.finetune.distill,
                "calibration_samples": self.calibration_samples}


@dataclass
class Built:
    """A pruned, finetuned model, its deployable ONNX file, its validation top-1 (what the search
    optimizes) and its test top-1 (held out: reported, never used to choose)."""

    model: nn.Module
    onnx_path: Path
    accuracy: float
    test_accuracy: float
    architecture: str  # space.architecture_hash
    channels: dict[str, int]
    macs: int


def onnx_accuracy(path: Path, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 of an ONNX model (run by onnxruntime, batch 1) on `x`, `y`."""
    runner = session(onnx.load(path))
    name = runner.get_inputs()[0].name
    predicted = [int(np.argmax(runner.run(None, {name: sample[None]})[0])) for sample in x]
    return float(np.mean(np.array(predicted) == y))


def build(base: nn.Module, input_shape: tuple[int, ...], ds: Dataset, ratios: dict[str, float],
          settings: Settings, folder: Path) -> Built:
    """Prune a copy of `base` by `ratios` (layer -> fraction), finetune it on the training split
    (distilled from `base` when the recipe says so), write `folder/model.int8.onnx`
    (`model.onnx` for fp32), score it on the validation and test splits."""
    model = copy.deepcopy(base)
    pruned = {name: r for name, r in ratios.items() if r > 0}
    if pruned:
        prune_channels(model, input_shape, pruned, settings.criterion, settings.round_to,
                       x=ds.x_train, y=ds.y_train)
    train(model, ds.x_train, ds.y_train, settings.finetune, teacher=base)
    folder.mkdir(parents=True, exist_ok=True)
    if settings.precision == "int8":
        path = folder / "model.int8.onnx"
        with contextlib.redirect_stderr(io.StringIO()):  # exporter warnings
            quantize(model, ds.x_train, path, input_shape=input_shape,
                     samples=settings.calibration_samples, eval_samples=8, write_report=False)
        accuracy, test = (onnx_accuracy(path, ds.x_val, ds.y_val),
                          onnx_accuracy(path, ds.x_test, ds.y_test))
    else:
        path = to_onnx(model, input_shape, folder / "model.onnx")
        accuracy, test = (evaluate(model, x, y, ds.num_classes).accuracy
                          for x, y in ((ds.x_val, ds.y_val), (ds.x_test, ds.y_test)))
    counts = stats.count(model, input_shape)
    return Built(model, path, accuracy, test,
                 space.architecture_hash(model, input_shape, device=settings.device,
                                         precision=settings.precision, compiler=compiler_fingerprint()),
                 {layer.name: layer.output_shape[0] for layer in counts.layers}, counts.macs)
