"""A task: the model that prune, quantize and search work on, its data, and how to finetune and
score it; made in Python, named on the command line as `path/to/task.py:task` or
`pkg.module:task` (see `edgeprune.taskfile`), or a zoo name (`zoo_task`).

    from edgeprune.task import Task
    task = Task(model=MyNet(), input_shape=(1, 1, 49, 10), train=(x, y), validation="val.npz",
                evaluate=my_f1, metric="f1")

Data is an `(x, y)` pair of arrays or tensors, an array `x` alone (auto-encoders), an `.npz` with
`x` (and `y`), or a torch `Dataset` / `DataLoader` yielding `(x, y)` or `x`; it is read once into
arrays. Without `validation`, 20 % of `train` is split off (seeded). `finetune(model, epochs)`
trains a model in place (default: edgeprune's recipe, distilled from the unpruned model);
`evaluate(model)` returns a number or a dict of numbers (default: top-1 on the validation split,
or ROC-AUC of the reconstruction error with `loss="reconstruction"`); `metric` names the key that
is maximised. In quantize and search `evaluate` also receives the int8 model, as a module that
runs it with onnxruntime. `calibration` (default: the first training samples) calibrates int8.
"""
from __future__ import annotations

import math
import os
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from edgeprune.errors import CallableError, TaskError
from edgeprune.models import data, zoo
from edgeprune.models.data import Dataset
from edgeprune.models.metrics import evaluate as classification_metrics, roc_auc
from edgeprune.models.train import LOSSES, Recipe, train
from edgeprune.taskdata import Data, read, samples, split_validation

__all__ = ["CallableError", "Task", "TaskError", "load_weights", "metric_label", "task_data", "zoo_task"]

Finetune = Callable[[nn.Module, int], Any]
Evaluate = Callable[[nn.Module], "float | Mapping[str, float]"]
DEFAULT_METRICS = {"cross_entropy": "accuracy", "reconstruction": "roc_auc"}


def metric_label(metric: str) -> str:
    """How reports name a metric: top-1 for accuracy, ROC-AUC for roc_auc, else its key."""
    return {"accuracy": "top-1", "roc_auc": "ROC-AUC"}.get(metric, metric)


@dataclass
class Task:
    """What to prune, quantize and search: a trained model, its input shape, data and callables
    (see the module's docstring). `trained=False` marks a model edgeprune trains first (zoo)."""

    model: nn.Module
    input_shape: tuple[int, ...]
    train: Data = None
    validation: Data = None
    test: Data = None
    finetune: Finetune | None = None
    evaluate: Evaluate | None = None
    metric: str | None = None
    calibration: Data = None
    loss: str = "cross_entropy"  # the default finetune's loss: cross_entropy or reconstruction
    name: str = "task"
    trained: bool = True
    data: Dataset = field(init=False, repr=False)
    num_outputs: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.model, nn.Module):
            raise TaskError(f"task.model is a {type(self.model).__name__}, not a torch nn.Module")
        try:
            self.input_shape = tuple(int(d) for d in self.input_shape)
        except (TypeError, ValueError):
            raise TaskError(f"task.input_shape {self.input_shape!r} is not a tuple of integers") from None
        if len(self.input_shape) < 2 or self.input_shape[0] != 1 or min(self.input_shape) < 1:
            raise TaskError(f"task.input_shape {self.input_shape} must be (1, ...): batch 1, then "
                            "the sample's dimensions")
        for name in ("finetune", "evaluate"):
            if getattr(self, name) is not None and not callable(getattr(self, name)):
                raise TaskError(f"task.{name} is a {type(getattr(self, name)).__name__}, not a function")
        if self.loss not in LOSSES:
            raise TaskError(f"task.loss {self.loss!r}: use one of {', '.join(LOSSES)}")
        self.num_outputs = self._check_model()
        self.data = self._read_data()

    def _check_model(self) -> int:
        """The model's output width on a zero input of `input_shape` (TaskError if it fails)."""
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                out = self.model(torch.zeros(self.input_shape))
        except Exception as exc:
            raise TaskError(f"task.model fails on an input of task.input_shape {self.input_shape}: "
                            f"{type(exc).__name__}: {exc}") from exc
        finally:
            self.model.train(was_training)
        if not isinstance(out, torch.Tensor) or out.ndim < 2 or out.shape[0] != 1:
            raise TaskError(f"task.model must return one tensor (1, ...) for task.input_shape "
                            f"{self.input_shape}, got {getattr(out, 'shape', type(out).__name__)}")
        return int(out.shape[1])

    def _read_data(self) -> Dataset:
        """The data as arrays; labels of 0 where a source has none."""
        if self.train is None:
            if self.finetune is None or self.evaluate is None:
                missing = "finetune" if self.finetune is None else "evaluate"
                raise TaskError(f"task.train is missing: the default {missing} needs training data "
                                f"(or give task.{missing} and task.calibration)")
            if self.calibration is None:
                raise TaskError("task.train is missing: give task.calibration for int8")
            return Dataset(*self._empty(), *self._empty(), *self._empty())
        x, y = samples(*read(self.train, "train"), self.input_shape, "train")
        if self.validation is None:
            parts = split_validation(x, y)
        else:
            x_val, y_val = samples(*read(self.validation, "validation"), self.input_shape,
                                    "validation")
            parts = (x, y, x_val, y_val)
        test = self._empty() if self.test is None else samples(*read(self.test, "test"),
                                                               self.input_shape, "test")
        defaults = self.loss == "cross_entropy" and (self.finetune is None or self.evaluate is None)
        if defaults and (parts[1] is None or parts[3] is None):
            raise TaskError(f"task.{'train' if parts[1] is None else 'validation'} has no labels: the "
                            "default finetune and evaluate (cross entropy, top-1) need (x, y)")
        arrays = [*parts, *test]
        x_train, y_train, x_val, y_val, x_test, y_test = (
            np.zeros(len(arrays[i - 1]), np.int64) if value is None else value
            for i, value in enumerate(arrays))
        if defaults:
            self._check_labels(y_train, y_val)
        if self.loss == "reconstruction" and self.evaluate is None and len(np.unique(y_val)) != 2:
            raise TaskError("task.validation: the default ROC-AUC needs labels 0 (normal) and "
                            "1 (anomaly) in y")
        return Dataset(x_train, y_train, x_val, y_val, x_test, y_test)

    def _empty(self) -> tuple[np.ndarray, np.ndarray]:
        """No samples (x, y) of the input shape."""
        return np.zeros((0, *self.input_shape[1:]), np.float32), np.zeros(0, np.int64)

    def _check_labels(self, *labels: np.ndarray) -> None:
        for y in labels:
            if not np.issubdtype(y.dtype, np.integer):
                raise TaskError(f"task data: labels have dtype {y.dtype}; the default finetune and "
                                "evaluate (cross entropy, top-1) need integer class labels")
            if len(y) and (y.min() < 0 or y.max() >= self.num_outputs):
                raise TaskError(f"task data: labels go from {y.min()} to {y.max()}, but the model "
                                f"has {self.num_outputs} outputs")

    @property
    def metric_name(self) -> str:
        """The key of the scores that is maximised."""
        if self.metric:
            return self.metric
        return DEFAULT_METRICS[self.loss] if self.evaluate is None else "score"

    @property
    def validation_samples(self) -> int:
        """Samples in the validation split (0 when a custom evaluate brings its own data)."""
        return len(self.data.y_val)

    def tune(self, model: nn.Module, recipe: Recipe, teacher: nn.Module | None = None,
             progress: bool = False, **hooks: Any) -> nn.Module:
        """Finetune `model` in place for `recipe.epochs`: the task's finetune, else edgeprune's
        recipe with the task's loss (distilled from `teacher` when the recipe says so); `hooks`
        are `train`'s (regularizer, on_step), which only edgeprune's recipe takes."""
        if not recipe.epochs:
            return model.eval()
        if self.finetune is not None:
            if hooks:
                raise TaskError(f"{', '.join(hooks)} needs edgeprune's finetune recipe; this task "
                                "has its own task.finetune")
            self._call("finetune", self.finetune, model, recipe.epochs)
            return model.eval()
        recipe = Recipe(**{**recipe.__dict__, "loss": self.loss})
        return train(model, self.data.x_train, self.data.y_train, recipe,
                     teacher=teacher if recipe.distill else None, progress=progress, **hooks)

    def scores(self, model: nn.Module, split: str = "val") -> dict[str, float]:
        """The task's scores of `model`: its evaluate, else the default metrics on `split`
        (val or test); TaskError without the metric key or with a NaN."""
        if self.evaluate is None:
            values = self._default_scores(model, split)
        else:
            values = self._numbers(self._call("evaluate", self.evaluate, model))
        if self.metric_name not in values:
            raise TaskError(f"task.evaluate returned {sorted(values)}, without the metric "
                            f"{self.metric_name!r}; set task.metric to the key to maximise")
        return values

    def score(self, model: nn.Module) -> float:
        """The maximised metric of `model`."""
        return self.scores(model)[self.metric_name]

    def test_score(self, model: nn.Module) -> float | None:
        """The default metric on the held-out test split; None without one or with a custom evaluate."""
        if self.evaluate is not None or not len(self.data.x_test):
            return None
        return self.scores(model, "test")[self.metric_name]

    def _default_scores(self, model: nn.Module, split: str) -> dict[str, float]:
        x, y = getattr(self.data, f"x_{split}"), getattr(self.data, f"y_{split}")
        if self.loss == "reconstruction":
            return {"roc_auc": roc_auc(model, x, y)}
        return classification_metrics(model, x, y, self.num_outputs).scores()

    def _numbers(self, result: Any) -> dict[str, float]:
        """An evaluate's result as {key: float}; CallableError for anything else or a NaN."""
        items = result.items() if isinstance(result, Mapping) else [(self.metric_name, result)]
        values = {}
        for key, value in items:
            try:
                values[str(key)] = float(value)
            except (TypeError, ValueError):
                raise CallableError(f"task.evaluate returned {type(result).__name__} "
                                    f"{result!r:.80}; return a number or a dict of numbers") from None
            if math.isnan(values[str(key)]):
                raise CallableError(f"task.evaluate returned NaN for {str(key)!r}; candidates cannot "
                                    "be ranked on it")
        return values

    def _call(self, what: str, function: Callable, *args: Any) -> Any:
        try:
            return function(*args)
        except Exception as exc:
            raise CallableError(f"task.{what} raised {type(exc).__name__}: {exc}",
                                traceback.format_exc()) from exc

    def calibration_samples(self) -> np.ndarray:
        """Samples to calibrate int8 with: task.calibration, else the training samples."""
        if self.calibration is None:
            return self.data.x_train
        return samples(read(self.calibration, "calibration")[0], None, self.input_shape,
                        "calibration")[0]


def task_data(name: str | None, shape: tuple[int, ...]) -> Dataset:
    """The default data of a model (zoo `name`, or None): the digits shaped for `shape` (the
    binary task for 2 outputs); for the AD auto-encoder with synthetic anomalies to detect."""
    ds = data.digits(shape, data.digits_classes(zoo.num_outputs(name) if name else None))
    return data.anomaly_task(ds) if name == "ad_autoencoder" else ds


def zoo_task(name: str, ds: Dataset | None = None) -> Task:
    """Zoo model `name`, untrained, on `ds` (default: `task_data`); the AD auto-encoder trains on
    reconstruction and is scored by ROC-AUC."""
    shape = zoo.input_shape(name)
    model = zoo.build_model(name)
    ds = task_data(name, shape) if ds is None else ds
    loss = "reconstruction" if name == "ad_autoencoder" else "cross_entropy"
    return Task(model, shape, (ds.x_train, ds.y_train), (ds.x_val, ds.y_val),
                (ds.x_test, ds.y_test) if len(ds.x_test) else None, loss=loss, name=name,
                trained=False)


def load_weights(factory: Callable[[], nn.Module], path: str | os.PathLike) -> nn.Module:
    """`factory()` with the state dict saved at `path` (`torch.save(model.state_dict(), path)`),
    read without unpickling objects."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise TaskError(f"{path}: no such file") from None
    except Exception as exc:
        raise TaskError(f"{path}: not a state dict ({type(exc).__name__}); save it with "
                        "torch.save(model.state_dict(), path)") from exc
    model = factory()
    try:
        model.load_state_dict(state)
    except Exception as exc:
        raise TaskError(f"{path}: the weights do not fit the factory's model: {exc}") from exc
    return model.eval()
