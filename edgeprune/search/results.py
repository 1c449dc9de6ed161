"""Finished trials as plain records, the Pareto front and the chosen candidate."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from optuna.trial import FrozenTrial, TrialState

from edgeprune.search import space


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
                     a.get("test_accuracy"))


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
