"""Optional k-fold re-scoring of the search's chosen candidate and its uniform neighbour (issue 21,
item 5): is the chosen one's gain real, or the luck of one validation split?

The search picks its candidate on the validation split, so that score is optimistic. Here the
validation split is left out: the task's other samples (train, and test if any) are cut into k
folds (`crossval.folds`). Per fold the task's model is trained afresh on the fold's training part
(edgeprune's recipe, `train_epochs`), then each of the two pruning plans is pruned, finetuned and
quantized exactly as in the search and scored on the fold's held-out part. The result: each
candidate's per-fold scores, their mean and standard error, and the paired gap (chosen less
neighbour) with its standard error (`compare.paired_gap`)."""
from __future__ import annotations

import copy
import statistics
from collections.abc import Sequence
from pathlib import Path

from edgeprune.models.train import Recipe
from edgeprune.search.candidate import build
from edgeprune.search.compare import paired_gap
from edgeprune.search.crossval import folds
from edgeprune.search.errors import SearchError
from edgeprune.search.results import Candidate
from edgeprune.search.settings import Settings
from edgeprune.task import Task


def uniform_neighbour(chosen: Candidate, uniform: Sequence[Candidate]) -> Candidate | None:
    """The uniform-pruning candidate closest to `chosen` in instructions (by ratio), other than it."""
    others = [u for u in uniform if u.number != chosen.number]
    return min(others, key=lambda u: (max(u.instructions, chosen.instructions) / min(u.instructions, chosen.instructions),
                                      u.number), default=None)


def check_rescorable(task: Task, k: int) -> None:
    """SearchError unless `task` can be re-scored on k folds of its own data (before a search starts)."""
    if k < 2:
        raise SearchError(f"--rescore-folds {k}: k-fold re-scoring needs at least 2 folds")
    if task.finetune is not None or task.evaluate is not None:
        own = " and ".join(n for n in ("finetune", "evaluate") if getattr(task, n) is not None)
        raise SearchError(f"--rescore-folds: this task has its own {own}, which cannot be given the folds' "
                          "data; re-scoring needs edgeprune's finetune and evaluate on task.train")
    samples = len(task.data.x_train) + len(task.data.x_test)
    if samples < 2 * k:
        raise SearchError(f"--rescore-folds {k}: the task has {samples} samples outside validation, "
                          f"too few for {k} folds")


def _fresh(model, task: Task, part, train_epochs: int) -> Task:
    """The task on one fold: its model re-initialised and trained on the fold's training part."""
    model = copy.deepcopy(model)
    for module in model.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    fold = Task(model, task.input_shape, (part.x_train, part.y_train), (part.x_val, part.y_val),
                loss=task.loss, name=task.name, trained=False)
    fold.tune(fold.model, Recipe(epochs=train_epochs))
    fold.trained = True
    return fold


def rescore(task: Task, chosen: Candidate, neighbour: Candidate, settings: Settings, k: int,
            train_epochs: int, work: Path, seed: int = 0) -> dict:
    """Per-fold scores of `chosen` and `neighbour`, their means and standard errors, and the gap."""
    check_rescorable(task, k)
    parts = folds(task.data, k, seed)
    scores: dict[int, list[float]] = {chosen.number: [], neighbour.number: []}
    for i, part in enumerate(parts):
        fold = _fresh(task.model, task, part, train_epochs)
        for c in (chosen, neighbour):
            scores[c.number].append(build(fold, c.ratios, settings, work / f"fold{i}-trial{c.number}").accuracy)

    def entry(role: str, c: Candidate) -> dict:
        values = scores[c.number]
        return {"role": role, "trial": c.number, "uniform": c.uniform, "instructions": c.instructions,
                "validation": c.accuracy, "scores": values, "mean": statistics.fmean(values),
                "standard_error": statistics.stdev(values) / len(values) ** 0.5}

    gap, error = paired_gap(scores[chosen.number], scores[neighbour.number])
    return {"k": k, "seed": seed, "train_epochs": train_epochs, "held_out": [len(p.y_val) for p in parts],
            "chosen": entry("chosen", chosen), "neighbour": entry("uniform neighbour", neighbour),
            "gap": {"mean": gap, "standard_error": error}}

