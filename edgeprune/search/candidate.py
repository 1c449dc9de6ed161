"""One candidate: prune the task's model, finetune briefly, quantize to int8, score with the task."""
from __future__ import annotations

import contextlib
import copy
import io
from dataclasses import dataclass, field
from pathlib import Path

import onnx
from torch import nn

from edgeprune.compile.fingerprint import compiler_fingerprint
from edgeprune.models import stats
from edgeprune.profile.defaults import DEFAULT_DEVICE
from edgeprune.models.export import to_onnx
from edgeprune.models.train import Recipe
from edgeprune.prune.structured import prune_channels
from edgeprune.quantize import quantize
from edgeprune.quantize.evaluate import OnnxModule
from edgeprune.search import space
from edgeprune.search.errors import SearchError
from edgeprune.task import Task

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
    """A pruned, finetuned model, its deployable ONNX file, its validation score (the task's
    metric, what the search optimizes) and its test score (held out: reported, never used to
    choose; None without a test split or with the task's own evaluate)."""

    model: nn.Module
    onnx_path: Path
    accuracy: float
    test_accuracy: float | None
    architecture: str  # space.architecture_hash
    channels: dict[str, int]
    macs: int


def build(task: Task, ratios: dict[str, float], settings: Settings, folder: Path) -> Built:
    """Prune a copy of the task's model by `ratios` (layer -> fraction), finetune it with the
    task's finetune (default: distilled from the unpruned model when the recipe says so), write
    `folder/model.int8.onnx` (`model.onnx` for fp32), score it with the task (int8: the ONNX
    model through onnxruntime)."""
    base, input_shape, ds = task.model, task.input_shape, task.data
    model = copy.deepcopy(base)
    pruned = {name: r for name, r in ratios.items() if r > 0}
    if pruned:
        prune_channels(model, input_shape, pruned, settings.criterion, settings.round_to,
                       x=ds.x_train, y=ds.y_train)
    task.tune(model, settings.finetune, teacher=base)
    folder.mkdir(parents=True, exist_ok=True)
    if settings.precision == "int8":
        path = folder / "model.int8.onnx"
        calibration = task.calibration_samples()
        with contextlib.redirect_stderr(io.StringIO()):  # exporter warnings
            quantize(model, calibration, path, input_shape=input_shape,
                     samples=settings.calibration_samples, write_report=False, eval_samples=8,
                     evaluation=ds.x_val if len(ds.x_val) else calibration)
        scored: nn.Module = OnnxModule(onnx.load(path))
    else:
        path = to_onnx(model, input_shape, folder / "model.onnx")
        scored = model
    counts = stats.count(model, input_shape)
    return Built(model, path, task.score(scored), task.test_score(scored),
                 space.architecture_hash(model, input_shape, device=settings.device,
                                         precision=settings.precision, compiler=compiler_fingerprint()),
                 {layer.name: layer.output_shape[0] for layer in counts.layers}, counts.macs)
