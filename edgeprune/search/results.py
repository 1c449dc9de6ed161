"""Finished trials as plain records, the Pareto front, the chosen candidate and the whole
search's result."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from optuna.trial import FrozenTrial, TrialState

from edgeprune.search import space
from edgeprune.search.budgets import Budgets
from edgeprune.task import metric_label

if TYPE_CHECKING:
    from edgeprune.search.candidate import Settings


@dataclass(frozen=True)
class Candidate:
    """One finished trial: its ratios, scores, measurements and budget verdict."""

    number: int
    ratios: dict[str, float]
    accuracy: float
    instructions: float
    flash_bytes: int
    ram_bytes: int
    feasible: bool
    uniform: float | None  # the ratio of a uniform-pruning (baseline) candidate
    cached: bool  # measurement reused from the architecture cache
    channels: dict[str, int]
    macs: int
    relative_error: float
    test_accuracy: float | None = None  # held-out test split: reported, never used to choose
    patch_grid: str | None = None  # its first stage ran in patches to fit the RAM budget

    def to_dict(self) -> dict:
        return asdict(self)


def candidate(trial: FrozenTrial) -> Candidate | None:
    """The record of a COMPLETE, measured trial; None for others (and for candidates the latency
    table skipped)."""
    if trial.state != TrialState.COMPLETE or "skipped" in trial.user_attrs:
        return None
    a = trial.user_attrs
    return Candidate(trial.number, space.ratios(trial.params), trial.values[0], trial.values[1],
                     a["flash_bytes"], a["ram_bytes"],
                     all(c <= 0 for c in trial.constraints.values()), a.get("uniform"),
                     a.get("cached", False), a["channels"], a["macs"], a["relative_error"],
                     a.get("test_accuracy"), a.get("patch_grid"))


def dominates(a: Candidate, b: Candidate) -> bool:
    """a is at least as accurate and as fast as b, and strictly better in one."""
    return (a.accuracy >= b.accuracy and a.instructions <= b.instructions
            and (a.accuracy > b.accuracy or a.instructions < b.instructions))


def pareto_front(candidates: list[Candidate]) -> list[Candidate]:
    """The non-dominated candidates, fastest first; of equal points the earliest trial is kept."""
    front: list[Candidate] = []
    for c in sorted(candidates, key=lambda c: (c.instructions, -c.accuracy, c.number)):
        if not any(dominates(f, c) or (f.accuracy, f.instructions) == (c.accuracy, c.instructions)
                   for f in front):
            front.append(c)
    return front


def near_front(candidates: list[Candidate], slack: float) -> list[Candidate]:
    """The candidates no other one beats on instructions while being more than `slack` more
    accurate: the Pareto front widened by the noise of the accuracy estimate."""
    return [c for c in candidates
            if not any(d.instructions <= c.instructions and d.accuracy > c.accuracy + slack
                       for d in candidates)]


def choose(feasible: list[Candidate]) -> Candidate | None:
    """The most accurate candidate within the budgets; of equals the fastest."""
    return min(feasible, key=lambda c: (-c.accuracy, c.instructions, c.number), default=None)


@dataclass
class SearchResult:
    """Everything the search found; `chosen` is None when no candidate meets the budgets."""

    model: str
    study: str
    storage: str
    sampler: str
    settings: Settings
    budgets: Budgets
    finished: int
    candidates: list[Candidate]
    failed: list[tuple[int, str]]
    front: list[Candidate] = field(default_factory=list)
    uniform: list[Candidate] = field(default_factory=list)
    chosen: Candidate | None = None
    reference: Candidate | None = None  # the unpruned (uniform 0.0) candidate, if measured
    exported: Path | None = None
    skipped: list[tuple[int, str]] = field(default_factory=list)  # not measured: latency table
    message: str = ""
    validation_samples: int = 0  # the split every candidate's score is measured on (0: the task's evaluate)
    metric: str = "accuracy"  # the task's metric that the search maximises
    task_finetune: bool = False  # candidates finetuned by the task's finetune, not edgeprune's recipe
    tracebacks: dict[int, str] = field(default_factory=dict)  # failed trials: where a task's callable failed
    unit: str = "instructions"  # of the latency figures (Candidate.instructions): the device's unit
    method: str = ""  # how the device measured them
    rescore: dict | None = None  # k-fold re-scoring of the chosen candidate and its uniform neighbour (`rescore`)

    @property
    def metric_label(self) -> str:
        return metric_label(self.metric)

    @property
    def cache_hits(self) -> int:
        return sum(c.cached for c in self.candidates)

    def to_dict(self) -> dict:
        return {"model": self.model, "study": self.study, "storage": self.storage,
                "sampler": self.sampler, "settings": self.settings.to_dict(),
                "budgets": self.budgets.__dict__, "finished": self.finished,
                "message": self.message, "cache_hits": self.cache_hits,
                "latency_unit": self.unit, "method": self.method,
                "latency_estimate_used": bool(self.skipped), "skipped": self.skipped,
                "candidates": [c.to_dict() for c in self.candidates],
                "pareto": [c.number for c in self.front],
                "uniform": [c.number for c in self.uniform],
                "chosen": self.chosen.to_dict() if self.chosen else None,
                "reference": self.reference.number if self.reference else None,
                "exported": str(self.exported) if self.exported else None,
                "failed": self.failed, "tracebacks": self.tracebacks,
                "validation_samples": self.validation_samples, "metric": self.metric,
                "task_finetune": self.task_finetune, "rescore": self.rescore}
