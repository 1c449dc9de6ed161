"""Rounds of prune -> finetune -> evaluate under an accuracy budget, resumable, for every method.

A `RoundStep` (one per method) prunes a copy of the model to `k/N` of its target in round k of N
and finetunes it. A round whose validation accuracy falls more than `max_drop` below the unpruned
model's is rejected: the schedule stops, keeps the previous round's model and says so in a
`Rejection` (which round, the drop against the budget, what was kept, what to change).
After every round the kept model and the schedule state go to a checkpoint (atomic write);
running again with the same checkpoint continues where it stopped.
"""
from __future__ import annotations

import copy
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from torch import nn
from tqdm.auto import tqdm

from edgeprune.models import stats
from edgeprune.models.data import Dataset
from edgeprune.models.train import Recipe
from edgeprune.prune import serialize
from edgeprune.prune.errors import PruneError
from edgeprune.prune.report import Report, compare
from edgeprune.task import Task, metric_label


@dataclass(frozen=True)
class Round:
    """What a round step gets: the unpruned model, how far the rounds before it got (`done`) and
    how far this one goes (`fraction`), as fractions of the method's target; the task (data,
    finetune) and recipe."""

    original: nn.Module
    done: float
    fraction: float
    task: Task
    finetune: Recipe
    progress: bool

    @property
    def data(self) -> Dataset:
        return self.task.data

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.task.input_shape


class RoundStep:
    """One pruning method as rounds: `run` prunes a candidate to `at.fraction` of the method's
    target and finetunes it; what it returns goes into the round's record."""

    name = "step"
    max_rounds: int | None = None  # None: any number of rounds

    def settings(self) -> dict:
        """The method's options (a checkpoint must come from the same ones)."""
        return asdict(self)

    def check(self, config: ScheduleConfig) -> None:
        """PruneError if this method cannot follow `config` (default: any number of rounds it allows)."""
        if self.max_rounds is not None and config.rounds > self.max_rounds:
            raise PruneError(f"the {self.name} method can do at most {self.max_rounds} round(s), "
                             f"got --rounds {config.rounds}")

    def prepare(self, model: nn.Module, task: Task, finetune: Recipe, progress: bool) -> None:
        """Once, before round 1 (default: nothing)."""

    def run(self, model: nn.Module, at: Round) -> dict:
        raise NotImplementedError


@dataclass(frozen=True)
class ScheduleConfig:
    """How many rounds, how each is finetuned, and how much accuracy pruning may cost."""

    rounds: int = 3
    max_drop: float = 0.02
    finetune: Recipe = Recipe(epochs=10, lr=3e-3)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Rejection:
    """A round that the accuracy budget rejected, and what the schedule kept instead."""

    round: int
    rounds: int
    baseline: float  # validation score (the task's metric) of the unpruned model
    accuracy: float  # validation score of the rejected round
    max_drop: float
    kept_round: int  # 0: the unpruned model
    finetune_epochs: int
    metric: str = "accuracy"

    @property
    def drop(self) -> float:
        return self.baseline - self.accuracy

    def to_dict(self) -> dict:
        return {**asdict(self), "drop": self.drop, "message": self.message()}

    def message(self) -> str:
        kept = ("kept the unpruned model: nothing was pruned" if self.kept_round == 0
                else f"kept the model of round {self.kept_round}")
        skipped = (f", round(s) {self.round + 1}-{self.rounds} not run" if self.round < self.rounds else "")
        name = "accuracy" if self.metric == "accuracy" else metric_label(self.metric)
        return (f"round {self.round} of {self.rounds} rejected by the accuracy budget: validation "
                f"{name} {self.baseline:.2%} -> {self.accuracy:.2%}, a drop of {self.drop * 100:.2f} points, "
                f"more than the budget of {self.max_drop * 100:g} points (--max-drop); {kept}{skipped}. "
                f"To prune more: more finetune epochs (--finetune-epochs, now {self.finetune_epochs}), more "
                f"rounds so that each prunes less (--rounds, now {self.rounds}), or a larger --max-drop.")


@dataclass
class ScheduleResult:
    """The kept model, per-round records, the unpruned baseline's scores and the rejected round if any."""

    model: nn.Module
    baseline: dict[str, float]
    history: list[dict] = field(default_factory=list)
    rejection: Rejection | None = None
    report: Report | None = None

    @property
    def accepted_rounds(self) -> int:
        return sum(r["accepted"] for r in self.history)


def resume(checkpoint: Path, model: nn.Module, settings: dict) -> tuple[nn.Module, dict]:
    """Model and state from `checkpoint`, which must come from the same settings."""
    saved = serialize.load(checkpoint, builder=lambda: copy.deepcopy(model))
    if saved.extra.get("settings") != settings:
        raise PruneError(f"checkpoint {checkpoint} was made with other settings; "
                         "remove it or choose another checkpoint path")
    return saved.model, saved.extra


def check_schedule(step: RoundStep, config: ScheduleConfig) -> None:
    """PruneError for a schedule that `step` cannot follow."""
    if config.rounds < 1:
        raise PruneError(f"rounds must be at least 1, got {config.rounds}")
    if config.finetune.epochs < 0:
        raise PruneError(f"finetune epochs must be at least 0, got {config.finetune.epochs}")
    step.check(config)


def iterative_prune(model: nn.Module, input_shape: tuple[int, ...], data: Dataset, step: RoundStep,
                    config: ScheduleConfig = ScheduleConfig(),
                    checkpoint: str | os.PathLike | None = None,
                    model_name: str | None = None, progress: bool = True,
                    task: Task | None = None) -> ScheduleResult:
    """Prune a trained `model` (left untouched) in rounds; returns the last model within budget.
    The rounds finetune and score with `task` (default: edgeprune's recipe and top-1 on `data`)."""
    check_schedule(step, config)
    if task is None:
        task = Task(model, input_shape, (data.x_train, data.y_train), (data.x_val, data.y_val))
    settings = {"method": step.name, "step": step.settings(), "config": config.to_dict()}
    metric = task.metric_name
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    if checkpoint is not None and checkpoint.exists():
        current, state = resume(checkpoint, model, settings)
    else:
        current = copy.deepcopy(model)
        state = {"settings": settings, "round": 0, "history": [], "rejection": None,
                 "baseline": task.scores(current)}
        step.prepare(current, task, config.finetune, progress)
    baseline = state["baseline"]
    rounds = tqdm(range(state["round"] + 1, config.rounds + 1), desc="prune", unit="round",
                  disable=not progress or state["rejection"] is not None, initial=state["round"],
                  total=config.rounds)
    for k in rounds:
        if state["rejection"] is not None:
            break
        candidate = copy.deepcopy(current)
        done = step.run(candidate, Round(model, (k - 1) / config.rounds, k / config.rounds, task,
                                         config.finetune, progress))
        scores = task.scores(candidate)
        counts = stats.count(candidate, input_shape)
        record = {"round": k, "fraction": k / config.rounds, "macs": counts.macs,
                  "params": counts.params, **scores, **done}
        rounds.set_postfix({metric: f"{scores[metric]:.3f}", "macs": counts.macs})
        accepted = baseline[metric] - scores[metric] <= config.max_drop
        state["history"].append({**record, "accepted": accepted})
        if accepted:
            state["round"] = k
            current = candidate
        else:
            state["rejection"] = asdict(Rejection(k, config.rounds, baseline[metric], scores[metric],
                                                  config.max_drop, state["round"], config.finetune.epochs,
                                                  metric))
        if checkpoint is not None:
            serialize.save(checkpoint, current, input_shape, model_name, state)
    rejection = Rejection(**state["rejection"]) if state["rejection"] is not None else None
    return ScheduleResult(current, baseline, state["history"], rejection,
                          compare(stats.count(model, input_shape), stats.count(current, input_shape)))
