"""One candidate: prune the task's model, finetune briefly, quantize to int8, score with the task."""
from __future__ import annotations

import contextlib
import copy
import io
from dataclasses import dataclass
from pathlib import Path

import onnx
from torch import nn

from edgeprune.models import stats
from edgeprune.models.export import to_onnx
from edgeprune.prune.structured import prune_channels
from edgeprune.quantize import quantize
from edgeprune.quantize.evaluate import OnnxModule
from edgeprune.search.measure import candidate_architecture
from edgeprune.search.settings import Settings
from edgeprune.task import Task


@dataclass
class Built:
    """A pruned, finetuned model, its deployable ONNX file, its validation score (the task's
    metric, what the search optimizes) and its test score (held out: reported, never used to
    choose; None without a test split or with the task's own evaluate)."""

    model: nn.Module
    onnx_path: Path
    accuracy: float
    test_accuracy: float | None
    architecture: str  # measure.candidate_architecture: the key of its measurements
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
                 candidate_architecture(path),
                 {layer.name: layer.output_shape[0] for layer in counts.layers}, counts.macs)
