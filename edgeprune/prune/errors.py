"""Errors of the pruning stage."""
from __future__ import annotations

from typing import Any

from edgeprune.errors import EdgepruneError


class PruneError(EdgepruneError):
    """Bad pruning input: a ratio out of range, an unknown layer or criterion, an untraceable model."""


class NothingPrunedError(PruneError):
    """No pruning round was accepted, so the result would be the unpruned model; nothing is written.

    `outcome` is the `edgeprune.prune.api.Outcome` (metrics, history, the rejected round)."""

    def __init__(self, outcome: Any):
        self.outcome = outcome
        reason = outcome.rejection.message() if outcome.rejection else "no round was accepted"
        super().__init__(f"nothing pruned, nothing written: {reason} Or ask for a budget-gated "
                         "search (--rounds with --max-drop), which may keep the unpruned model.")
