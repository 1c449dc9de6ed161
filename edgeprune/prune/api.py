"""`edgeprune.prune.prune(...)`: load or train a model, prune it one way, evaluate, save, export."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from edgeprune.models import data as datasets, stats, zoo
from edgeprune.models.export import to_onnx
from edgeprune.models.metrics import Metrics, evaluate
from edgeprune.models.train import Recipe, train
from edgeprune.prune import serialize
from edgeprune.prune.blocks import remove_blocks
from edgeprune.prune.errors import PruneError
from edgeprune.prune.lowrank import low_rank
from edgeprune.prune.report import Report, compare
from edgeprune.prune.schedule import ScheduleConfig, iterative_prune
from edgeprune.prune.structured import Ratios
from edgeprune.prune.unstructured import magnitude_prune

METHODS = ("channels", "unstructured", "blocks", "lowrank")


@dataclass
class Outcome:
    """The pruned model, test metrics before and after, and what the method reports."""

    model: nn.Module
    before: Metrics
    after: Metrics
    report: Report
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"before": self.before.to_dict(), "after": self.after.to_dict(),
                "layers": self.report.to_dict(), **self.details}


def starting_model(model: str | os.PathLike | nn.Module,
                   input_shape: tuple[int, ...] | None) -> tuple[nn.Module, str | None, tuple, bool]:
    """(model, zoo name, input shape, needs training) for a zoo name, a saved file or a module."""
    if isinstance(model, nn.Module):
        if input_shape is None:
            raise PruneError("pass input_shape with a torch module")
        return model, None, tuple(input_shape), False
    if str(model) in zoo.ZOO:
        return zoo.build_model(str(model)), str(model), zoo.input_shape(str(model)), True
    if not Path(model).exists():
        raise PruneError(f"{model!r} is neither a zoo model ({', '.join(zoo.model_names())}) "
                         "nor a saved model file")
    saved = serialize.load(model)
    return saved.model, saved.model_name, saved.input_shape, False


def prune(model: str | os.PathLike | nn.Module, output: str | os.PathLike | None = None, *,
          method: str = "channels", ratio: Ratios = 0.5, criterion: str = "l1",
          rounds: int = 1, round_to: int = 1, ignored: tuple[str, ...] = (),
          max_drop: float = 0.02, sparsity: float = 0.5, scope: str = "layer",
          blocks: int = 1, energy: float = 0.9, data: str | os.PathLike | None = None,
          input_shape: tuple[int, ...] | None = None, train_epochs: int = 30,
          finetune_epochs: int = 10, slimming_epochs: int = 0,
          checkpoint: str | os.PathLike | None = None, onnx: str | os.PathLike | None = None,
          progress: bool = False) -> Outcome:
    """Prune `model` (zoo name: trained here first; saved `.pt`; or a module) with `method`.

    Data: an `.npz` (`x`, `y`) or, by default, the digits shaped for the model. Saves the result
    to `output` (see `serialize`) and, if given, exports ONNX to `onnx`.
    """
    if method not in METHODS:
        raise PruneError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    net, name, shape, fresh = starting_model(model, input_shape)
    if data is not None:
        ds = datasets.load_npz(data, shape)
    else:
        ds = datasets.digits(shape, datasets.digits_classes(zoo.num_outputs(name) if name else None))
    if fresh:
        train(net, ds.x_train, ds.y_train, Recipe(epochs=train_epochs), progress=progress)
    classes = ds.num_classes
    before = evaluate(net, ds.x_test, ds.y_test, classes)
    finetune = Recipe(epochs=finetune_epochs, lr=3e-3)
    count_before = stats.count(net, shape)
    details: dict[str, Any] = {"method": method}
    if method == "channels":
        result = iterative_prune(net, shape, ds, ScheduleConfig(
            ratio, criterion, rounds, round_to, tuple(ignored), max_drop, finetune,
            slimming_epochs),
            checkpoint, name, progress)
        net = result.model
        details |= {"history": result.history, "stopped_early": result.stopped_early}
    elif method == "unstructured":
        details["sparsity"] = magnitude_prune(net, sparsity, scope).to_dict()
    else:
        if method == "blocks":
            details["removed"] = remove_blocks(net, shape, blocks, ds.x_val, ds.y_val)
        else:
            details["ranks"] = low_rank(net, energy)
        train(net, ds.x_train, ds.y_train, finetune, progress=progress)
    if output is not None:
        serialize.save(output, net, shape, name)
    if onnx is not None:
        to_onnx(net, shape, onnx)
    return Outcome(net, before, evaluate(net, ds.x_test, ds.y_test, classes),
                   compare(count_before, stats.count(net, shape)), details)
