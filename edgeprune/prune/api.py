"""`edgeprune.prune.prune(...)`: load or train a model, prune it one way, evaluate, save, export."""
from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgeprune.models import data as datasets, zoo
from edgeprune.models.export import to_onnx
from edgeprune.models.train import Recipe
from edgeprune.prune import serialize
from edgeprune.prune.errors import NothingPrunedError, PruneError
from edgeprune.prune.gradual import UnstructuredStep
from edgeprune.prune.report import Report
from edgeprune.prune.schedule import Rejection, RoundStep, ScheduleConfig, check_schedule, iterative_prune
from edgeprune.prune.steps import BlockStep, ChannelStep, LowRankStep
from edgeprune.prune.structured import Ratios
from edgeprune.prune.unstructured import SparsityReport, sparsity_report
from edgeprune.task import Task, metric_label, task_data, zoo_task
from edgeprune.taskfile import is_reference, load_task

METHODS = ("channels", "unstructured", "blocks", "lowrank")
# The options each method takes, beyond rounds, max_drop, finetune_epochs and checkpoint.
METHOD_OPTIONS = {
    "channels": ("ratio", "criterion", "round_to", "ignored", "slimming_epochs"),
    "unstructured": ("sparsity", "scope", "criterion", "gradual", "first_layer_cap", "pattern"),
    "blocks": ("blocks",),
    "lowrank": ("energy",),
}
STEPS: dict[str, type[RoundStep]] = {"channels": ChannelStep, "unstructured": UnstructuredStep,
                                     "blocks": BlockStep, "lowrank": LowRankStep}
# The step's field for an API option, and the command line's name of one, where they differ.
FIELDS = {"ratio": "ratios"}
FLAGS = {"ignored": "--ignore", "ratio": "--ratio/--layer-ratio"}


@dataclass
class Outcome:
    """The pruned model, its scores before and after (`scored_on` says on what), the budget's
    verdict and what the method reports."""

    model: nn.Module
    before: dict[str, float]
    after: dict[str, float]
    report: Report
    rejection: Rejection | None = None  # the round the accuracy budget rejected, if one was
    pruned: bool = True  # False: no round was accepted, `model` is the unpruned model
    sparsity: SparsityReport | None = None  # zero weights by layer (unstructured)
    details: dict[str, Any] = field(default_factory=dict)
    metric: str = "accuracy"
    scored_on: str = "test"  # the test split, validation split, or the task's evaluate

    def summary(self) -> str:
        """`test accuracy 98.06% -> 97.50%`, or the task's metric by name."""
        name = "accuracy" if self.metric == "accuracy" else metric_label(self.metric)
        before, after = self.before[self.metric], self.after[self.metric]
        if self.scored_on == "task.evaluate":
            return f"{name} (task.evaluate) {before:.4g} -> {after:.4g}"
        return f"{self.scored_on} {name} {before:.2%} -> {after:.2%}"

    def to_dict(self) -> dict:
        return {"pruned": self.pruned, "rejected": self.rejection.to_dict() if self.rejection else None,
                "metric": self.metric, "scored_on": self.scored_on,
                "before": self.before, "after": self.after,
                "layers": self.report.to_dict(),
                **({"sparsity": self.sparsity.to_dict()} if self.sparsity else {}), **self.details}


def pickled_model(path: str | os.PathLike, trust_pickle: bool,
                  input_shape: tuple[int, ...] | None) -> nn.Module | None:
    """A whole model pickled with `torch.save(model, path)`, loaded only with `trust_pickle`;
    None for a file that is not one (a model saved by edgeprune). PruneError for a state dict,
    which needs its model class, and for a pickle not trusted."""
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        if not trust_pickle:
            raise PruneError(
                f"{path} is a pickled model, which edgeprune does not load by default (unpickling "
                "runs code from the file): describe the model in a task file (README, 'Your own "
                "model'), or pass --trust-pickle with --input-shape if you trust the file") from None
        if input_shape is None:
            raise PruneError(f"{path}: a pickled model needs --input-shape (e.g. 1,1,8,8)")
        net = torch.load(path, map_location="cpu", weights_only=False)
        if not isinstance(net, nn.Module):
            raise PruneError(f"{path} holds a {type(net).__name__}, not a torch nn.Module")
        return net.eval()
    except Exception:
        return None  # serialize.load explains
    if isinstance(record, Mapping) and record.get("format") != serialize.FORMAT and all(
            isinstance(v, torch.Tensor) for v in record.values()):
        raise PruneError(f"{path} holds weights only (a state dict): load them in a task file with "
                         "edgeprune.task.load_weights(YourModel, path) (README, 'Your own model')")
    return None


def starting_model(model: str | os.PathLike | nn.Module, input_shape: tuple[int, ...] | None,
                   trust_pickle: bool = False) -> tuple[nn.Module, str | None, tuple, bool]:
    """(model, zoo name, input shape, needs training) for a zoo name, a saved file or a module."""
    if isinstance(model, nn.Module):
        if input_shape is None:
            raise PruneError("pass input_shape with a torch module")
        return model, None, tuple(input_shape), False
    if str(model) in zoo.ZOO:
        return zoo.build_model(str(model)), str(model), zoo.input_shape(str(model)), True
    if not Path(model).exists():
        raise PruneError(f"{model!r} is neither a zoo model ({', '.join(zoo.model_names())}), "
                         "a task (FILE.py:NAME) nor a saved model file")
    net = pickled_model(model, trust_pickle, input_shape)
    if net is not None:
        return net, None, tuple(input_shape), False
    saved = serialize.load(model)
    return saved.model, saved.model_name, saved.input_shape, False


def task_of(model: str | os.PathLike | nn.Module | Task, input_shape: tuple[int, ...] | None = None,
            data: str | os.PathLike | None = None, trust_pickle: bool = False) -> Task:
    """The task of a model argument: a Task or task reference as it is, a zoo name (a ready-made
    task, trained first), a `.pt` saved by edgeprune or a module, on the digits or `data` (.npz)."""
    if isinstance(model, Task) or (isinstance(model, str) and is_reference(model)):
        if data is not None:
            raise PruneError("a task brings its own data: give it in the task, not with --data")
        return model if isinstance(model, Task) else load_task(model)
    net, name, shape, fresh = starting_model(model, input_shape, trust_pickle)
    ds = datasets.load_npz(data, shape) if data is not None else task_data(name, shape)
    if fresh:
        return zoo_task(name, ds)
    label = name or (type(net).__name__ if isinstance(net, nn.Module) else Path(model).stem)
    return Task(net, shape, (ds.x_train, ds.y_train), (ds.x_val, ds.y_val), (ds.x_test, ds.y_test),
                loss="reconstruction" if name == "ad_autoencoder" else "cross_entropy", name=label)


def method_step(method: str, options: dict[str, Any]) -> RoundStep:
    """The round step of `method` from its `options` (None: not given); PruneError for an option
    the method does not take."""
    if method not in METHODS:
        raise PruneError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    given = {name: value for name, value in options.items() if value is not None and value != ()}
    foreign = [name for name in given if name not in METHOD_OPTIONS[method]]
    if foreign:
        name = foreign[0]
        owners = [m for m, names in METHOD_OPTIONS.items() if name in names]
        raise PruneError(f"{FLAGS.get(name, '--' + name.replace('_', '-'))} does not apply to --method "
                         f"{method} (it is an option of: {', '.join(owners)})")
    return STEPS[method](**{FIELDS.get(name, name): value for name, value in given.items()})


def prune(model: str | os.PathLike | nn.Module | Task, output: str | os.PathLike | None = None, *,
          method: str = "channels", rounds: int | None = None, max_drop: float | None = None,
          finetune_epochs: int = 10, ratio: Ratios | None = None, criterion: str | None = None,
          round_to: int | None = None, ignored: tuple[str, ...] = (), slimming_epochs: int | None = None,
          sparsity: float | None = None, scope: str | None = None, gradual: bool | None = None,
          first_layer_cap: float | None = None, pattern: str | None = None, blocks: int | None = None,
          energy: float | None = None, data: str | os.PathLike | None = None, input_shape: tuple[int, ...] | None = None,
          train_epochs: int = 30, checkpoint: str | os.PathLike | None = None,
          onnx: str | os.PathLike | None = None, progress: bool = False,
          trust_pickle: bool = False) -> Outcome:
    """Prune `model` (a Task or task reference `FILE.py:NAME`; zoo name: trained here first; saved
    `.pt`; or a module) with `method`.

    Every method runs `rounds` (default 1) of prune -> finetune (`finetune_epochs`) -> validate;
    a round losing more than `max_drop` (default 0.02) of the task's metric on validation is
    rejected and the previous round's model kept (`Outcome.rejection` says which and why). Method
    options left None take their defaults; giving one that `method` does not take is a PruneError.
    Unstructured `pattern`: "weights" (default), "block4" (whole blocks of four along the
    reduction, which the sparse int8 kernels skip) or "2:4" (2 of every 4 zeroed).

    Data: the task's, an `.npz` (`x`, `y`) or, by default, the digits shaped for the model. Saves
    the result to `output` (see `serialize`) and, if given, exports ONNX to `onnx`. When no round
    was accepted it raises `NothingPrunedError` (carrying the outcome) and writes nothing, unless
    both `rounds` and `max_drop` were given: a budget-gated search, whose result may be the
    unpruned model. A whole pickled model file is loaded only with `trust_pickle`.
    """
    step = method_step(method, {
        "ratio": ratio, "criterion": criterion, "round_to": round_to, "ignored": tuple(ignored),
        "slimming_epochs": slimming_epochs, "sparsity": sparsity, "scope": scope, "gradual": gradual,
        "first_layer_cap": first_layer_cap, "pattern": pattern, "blocks": blocks, "energy": energy})
    gated = rounds is not None and max_drop is not None
    config = ScheduleConfig(1 if rounds is None else rounds, 0.02 if max_drop is None else max_drop,
                            Recipe(epochs=finetune_epochs, lr=3e-3))
    check_schedule(step, config)
    task = task_of(model, input_shape, data, trust_pickle)
    net, shape = task.model, task.input_shape
    if not task.trained:
        task.tune(net, Recipe(epochs=train_epochs), progress=progress)
    split = "test" if task.evaluate is None and len(task.data.x_test) else "val"
    before = task.scores(net, split)
    name = task.name if task.name in zoo.ZOO else None
    result = iterative_prune(net, shape, task.data, step, config, checkpoint, name, progress, task)
    details: dict[str, Any] = {"method": method, "settings": step.settings(), "history": result.history}
    outcome = Outcome(result.model, before, task.scores(result.model, split), result.report,
                      result.rejection, result.accepted_rounds > 0,
                      sparsity_report(result.model) if method == "unstructured" else None, details,
                      task.metric_name,
                      "task.evaluate" if task.evaluate else {"test": "test", "val": "validation"}[split])
    if not outcome.pruned and not gated:
        raise NothingPrunedError(outcome)
    if output is not None:
        serialize.save(output, outcome.model, shape, name)
    if onnx is not None:
        to_onnx(outcome.model, shape, onnx)
    return outcome
