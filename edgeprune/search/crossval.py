"""Cross-validated accuracy of a candidate: a steadier figure than one small validation split.

A search selects candidates on the validation split, so their validation scores are optimistic
and, on the digits (360 samples, one sample = 0.28 point), noisy. This scores a candidate's
pruning plan on the other samples (train + test, the validation split left out) with k folds:
per fold the zoo model is trained from scratch on the fold's training part, pruned by the plan,
finetuned, quantized exactly as in the search, and scored on the fold's held-out part; the
figure is the fraction of all held-out samples classified right. Scores are kept in a JSON file
by channel counts, so an interrupted comparison resumes.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold
from edgeprune._atomic import write_text_atomic
from edgeprune.models.data import Dataset, SPLIT_SEED
from edgeprune.models.train import Recipe
from edgeprune.search.candidate import Settings, build
from edgeprune.task import Task, zoo_task


def folds(ds: Dataset, k: int, seed: int = SPLIT_SEED) -> list[Dataset]:
    """`k` stratified folds over train + test: each fold's training part as `x_train`, its
    held-out part as `x_val` (and `x_test`)."""
    x = np.concatenate([ds.x_train, ds.x_test])
    y = np.concatenate([ds.y_train, ds.y_test])
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return [Dataset(x[a], y[a], x[b], y[b], x[b], y[b]) for a, b in splitter.split(x, y)]


@dataclass(frozen=True)
class Score:
    """Held-out samples classified right, out of `total`, over all folds."""

    correct: int
    total: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.total


class CrossValidation:
    """k-fold scores of pruning plans of one zoo model, cached in `path` (JSON); `seed` draws
    the folds (another seed: another partition, so other trained models)."""

    def __init__(self, model: str, ds: Dataset, settings: Settings, train_epochs: int,
                 path: Path, k: int = 5, seed: int = SPLIT_SEED) -> None:
        self.model, self.settings, self.train_epochs, self.path = model, settings, train_epochs, path
        self.folds = folds(ds, k, seed)
        self._tasks: dict[int, Task] = {}
        self.context = json.dumps({"model": model, "k": k, "seed": seed,
                                   "train_epochs": train_epochs,
                                   **settings.to_dict()}, sort_keys=True)
        stored = json.loads(path.read_text()) if path.is_file() else {}
        self.scores: dict[str, list[int]] = (stored.get("scores", {})
                                             if stored.get("context") == self.context else {})

    def task(self, fold: int) -> Task:
        """The zoo model's task on the fold, its model trained on the fold's training part (the
        search's base recipe)."""
        if fold not in self._tasks:
            task = zoo_task(self.model, self.folds[fold])
            task.tune(task.model, Recipe(epochs=self.train_epochs))
            task.trained = True
            self._tasks[fold] = task
        return self._tasks[fold]

    def score(self, ratios: dict[str, float], channels: dict[str, int]) -> Score:
        """The plan's k-fold score (`channels` names the architecture in the cache)."""
        key = json.dumps(channels, sort_keys=True)
        if key not in self.scores:
            correct = 0
            with tempfile.TemporaryDirectory(prefix="crossval-") as scratch:
                for i, part in enumerate(self.folds):
                    built = build(self.task(i), ratios, self.settings, Path(scratch) / str(i))
                    correct += round(built.accuracy * len(part.y_val))
            self.scores[key] = [correct, sum(len(part.y_val) for part in self.folds)]
            write_text_atomic(self.path, json.dumps({"context": self.context,
                                                     "scores": self.scores}, indent=1) + "\n")
        return Score(*self.scores[key])
