"""Unstructured pruning as schedule rounds: masked finetuning, optionally gradual (Zhu & Gupta).

Each round masks weights (see `unstructured`), finetunes with the masks in force, so pruned weights
stay exactly zero, and then makes the masks permanent. With `gradual` the sparsity does not jump:
it rises over the finetuning steps on the cubic schedule of Zhu & Gupta (2017), "To prune, or not
to prune", from the previous round's sparsity to this round's.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from edgeprune.models.train import step_count
from edgeprune.prune.errors import PruneError
from edgeprune.prune.schedule import Round, RoundStep, ScheduleConfig
from edgeprune.prune.steps import finetune
from edgeprune.prune.unstructured import (CRITERIA, PATTERNS, SCOPES, check_sparsity, make_permanent,
                                          prune_weights, sparsity_report)

PRUNE_PART = 0.75  # the masks reach the round's sparsity after this part of the finetuning steps
UPDATES = 10  # mask updates on the way (fewer when there are fewer steps)


@dataclass(frozen=True)
class Cubic:
    """s_t = s_f + (s_i - s_f) (1 - (t - t0) / (n dt))^3, updated at t = t0, t0 + dt, ..., t0 + n dt.

    Before t0 the sparsity is s_i, from t0 + n dt on it is s_f; between updates the last value holds.
    """

    initial: float
    final: float
    begin: int
    every: int
    updates: int

    @property
    def end(self) -> int:
        return self.begin + self.updates * self.every

    def at(self, step: int) -> float:
        if step < self.begin:
            return self.initial
        if step >= self.end:
            return self.final
        t = self.begin + (step - self.begin) // self.every * self.every
        progress = (t - self.begin) / (self.updates * self.every)
        return self.final + (self.initial - self.final) * (1 - progress) ** 3


def over_steps(initial: float, final: float, total: int) -> Cubic:
    """The cubic schedule from step 0 to `PRUNE_PART` of `total` steps, with up to `UPDATES` updates."""
    span = int(total * PRUNE_PART)
    updates = min(UPDATES, span)
    return Cubic(initial, final, 0, max(1, span // updates) if updates else 1, updates)


@dataclass(frozen=True)
class UnstructuredStep(RoundStep):
    """Zero `sparsity` of the conv/linear weights by `criterion` (magnitude, random, taylor)."""

    sparsity: float = 0.5
    scope: str = "layer"
    criterion: str = "magnitude"
    gradual: bool = False
    first_layer_cap: float | None = None
    pattern: str = "weights"
    seed: int = 0

    name = "unstructured"

    def __post_init__(self):
        check_sparsity("sparsity", self.sparsity)
        if self.first_layer_cap is not None:
            check_sparsity("first-layer cap", self.first_layer_cap)
        if self.scope not in SCOPES:
            raise PruneError(f"unknown scope {self.scope!r}; use 'layer' or 'global'")
        if self.pattern not in PATTERNS:
            raise PruneError(f"unknown pattern {self.pattern!r}; use one of {', '.join(PATTERNS)}")
        if self.pattern == "2:4" and (self.sparsity != 0.5 or self.first_layer_cap is not None):
            raise PruneError("--pattern 2:4 zeroes 2 of every 4 weights: its sparsity is 0.5 in every layer "
                             "(no other --sparsity, no --first-layer-cap)")
        if self.criterion not in CRITERIA:
            raise PruneError(f"the unstructured method's criteria are {', '.join(CRITERIA)}; "
                             f"got {self.criterion!r}")

    def check(self, config: ScheduleConfig) -> None:
        if self.gradual and self.pattern == "2:4":
            raise PruneError("--gradual does not apply to --pattern 2:4 (a fixed 2 of every 4 weights)")
        if self.gradual and not config.finetune.epochs:
            raise PruneError("--gradual raises the sparsity while finetuning: give --finetune-epochs of at least 1")

    def run(self, model: nn.Module, at: Round) -> dict:
        generator = torch.Generator().manual_seed(self.seed)
        start, target = self.sparsity * at.done, self.sparsity * at.fraction

        def prune(sparsity: float) -> None:
            prune_weights(model, sparsity, self.scope, self.criterion, x=at.data.x_train, y=at.data.y_train,
                          first_layer_cap=self.first_layer_cap, generator=generator, pattern=self.pattern)

        if self.gradual:
            schedule = over_steps(start, target, step_count(at.finetune, len(at.data.x_train)))
            reached = [start]
            prune(start)

            def update(step: int) -> None:
                if schedule.at(step) != reached[0]:
                    reached[0] = schedule.at(step)
                    prune(reached[0])

            finetune(model, at, {"on_step": update})
        else:
            prune(target)
            finetune(model, at, {})
        make_permanent(model)
        return {"target_sparsity": target, "sparsity": sparsity_report(model).sparsity}
