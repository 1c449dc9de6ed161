"""The starting point of a search: a task (yours, from a task file or the API), a zoo model as a
ready-made task (trained once on its default data, kept in the output folder) or a model saved
by edgeprune, on the digits."""
from __future__ import annotations

import os
from pathlib import Path

from edgeprune.models.train import Recipe
from edgeprune.prune import serialize
from edgeprune.prune.api import task_of
from edgeprune.task import Task


def load_base(model: str | os.PathLike | Task, out: Path, train_epochs: int,
              trust_pickle: bool = False, input_shape: tuple[int, ...] | None = None) -> Task:
    """The task whose trained model the search prunes (a zoo model is trained once and kept in
    `out`); its model is scored once, so that a task whose evaluate fails is an error before the
    study starts and before anything else is written."""
    task = task_of(model, input_shape, None, trust_pickle)
    if not task.trained:
        out.mkdir(parents=True, exist_ok=True)
        saved = out / "base.pt"
        key = {"train_epochs": train_epochs}
        if saved.is_file() and serialize.load(saved).extra == key:
            task.model.load_state_dict(serialize.load(saved).model.state_dict())
        else:
            task.tune(task.model, Recipe(epochs=train_epochs))
            serialize.save(saved, task.model, task.input_shape, task.name, extra=key)
        task.trained = True
    task.model.eval()
    task.score(task.model)
    return task
