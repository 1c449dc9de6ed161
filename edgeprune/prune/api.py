"""`edgeprune.prune.prune(...)`: load or train a model, prune it one way, evaluate, save, export."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from edgeprune.models import data as datasets, zoo
from edgeprune.models.export import to_onnx
from edgeprune.models.metrics import Metrics, evaluate
from edgeprune.models.train import Recipe, train
from edgeprune.prune import serialize
from edgeprune.prune.errors import NothingPrunedError, PruneError
from edgeprune.prune.gradual import UnstructuredStep
from edgeprune.prune.report import Report
from edgeprune.prune.schedule import Rejection, RoundStep, ScheduleConfig, check_schedule, iterative_prune
from edgeprune.prune.steps import BlockStep, ChannelStep, LowRankStep
from edgeprune.prune.structured import Ratios
from edgeprune.prune.unstructured import SparsityReport, sparsity_report

METHODS = ("channels", "unstructured", "blocks", "lowrank")
# The options each method takes, beyond rounds, max_drop, finetune_epochs and checkpoint.
METHOD_OPTIONS = {
    "channels": ("ratio", "criterion", "round_to", "ignored", "slimming_epochs"),
    "unstructured": ("sparsity", "scope", "criterion", "gradual", "first_layer_cap"),
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
    """The pruned model, test metrics before and after, the budget's verdict and what the method reports."""

    model: nn.Module
    before: Metrics
    after: Metrics
    report: Report
    rejection: Rejection | None = None  # the round the accuracy budget rejected, if one was
    pruned: bool = True  # False: no round was accepted, `model` is the unpruned model
    sparsity: SparsityReport | None = None  # zero weights by layer (unstructured)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"pruned": self.pruned, "rejected": self.rejection.to_dict() if self.rejection else None,
                "before": self.before.to_dict(), "after": self.after.to_dict(),
                "layers": self.report.to_dict(),
                **({"sparsity": self.sparsity.to_dict()} if self.sparsity else {}), **self.details}


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


def prune(model: str | os.PathLike | nn.Module, output: str | os.PathLike | None = None, *,
          method: str = "channels", rounds: int | None = None, max_drop: float | None = None,
          finetune_epochs: int = 10, ratio: Ratios | None = None, criterion: str | None = None,
          round_to: int | None = None, ignored: tuple[str, ...] = (), slimming_epochs: int | None = None,
          sparsity: float | None = None, scope: str | None = None, gradual: bool | None = None,
          first_layer_cap: float | None = None, blocks: int | None = None, energy: float | None = None,
          data: str | os.PathLike | None = None, input_shape: tuple[int, ...] | None = None,
          train_epochs: int = 30, checkpoint: str | os.PathLike | None = None,
          onnx: str | os.PathLike | None = None, progress: bool = False) -> Outcome:
    """Prune `model` (zoo name: trained here first; saved `.pt`; or a module) with `method`.

    Every method runs `rounds` (default 1) of prune -> finetune (`finetune_epochs`) -> validate;
    a round losing more than `max_drop` (default 0.02) validation accuracy is rejected and the
    previous round's model kept (`Outcome.rejection` says which and why). Method options left None
    take their defaults; giving one that `method` does not take is a PruneError.

    Data: an `.npz` (`x`, `y`) or, by default, the digits shaped for the model. Saves the result
    to `output` (see `serialize`) and, if given, exports ONNX to `onnx`. When no round was
    accepted it raises `NothingPrunedError` (carrying the outcome) and writes nothing, unless both
    `rounds` and `max_drop` were given: a budget-gated search, whose result may be the unpruned model.
    """
    step = method_step(method, {
        "ratio": ratio, "criterion": criterion, "round_to": round_to, "ignored": tuple(ignored),
        "slimming_epochs": slimming_epochs, "sparsity": sparsity, "scope": scope, "gradual": gradual,
        "first_layer_cap": first_layer_cap, "blocks": blocks, "energy": energy})
    gated = rounds is not None and max_drop is not None
    config = ScheduleConfig(1 if rounds is None else rounds, 0.02 if max_drop is None else max_drop,
                            Recipe(epochs=finetune_epochs, lr=3e-3))
    check_schedule(step, config)
    net, name, shape, fresh = starting_model(model, input_shape)
    if data is not None:
        ds = datasets.load_npz(data, shape)
    else:
        ds = datasets.digits(shape, datasets.digits_classes(zoo.num_outputs(name) if name else None))
    if fresh:
        train(net, ds.x_train, ds.y_train, Recipe(epochs=train_epochs), progress=progress)
    classes = ds.num_classes
    before = evaluate(net, ds.x_test, ds.y_test, classes)
    result = iterative_prune(net, shape, ds, step, config, checkpoint, name, progress)
    details: dict[str, Any] = {"method": method, "settings": step.settings(), "history": result.history}
    outcome = Outcome(result.model, before, evaluate(result.model, ds.x_test, ds.y_test, classes),
                      result.report, result.rejection, result.accepted_rounds > 0,
                      sparsity_report(result.model) if method == "unstructured" else None, details)
    if not outcome.pruned and not gated:
        raise NothingPrunedError(outcome)
    if output is not None:
        serialize.save(output, outcome.model, shape, name)
    if onnx is not None:
        to_onnx(outcome.model, shape, onnx)
    return outcome
