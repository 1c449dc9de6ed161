"""A per-layer latency table learned from the search's own measurements, to skip hopeless
candidates before compiling and measuring them.

Per compute layer the table holds instructions per MAC and per output element, fitted by
non-negative least squares on the measured candidates (plus one constant). It is used only once
it predicts each measured searched candidate (left out of the fit, in turn) within half the
margin: uniform candidates alone do not tell the layers apart. A candidate is
skipped when its estimate, even 15 % better, is over the latency budget or dominated by a
measured candidate at least as accurate. Skipped candidates tell the sampler their estimate;
they never enter the Pareto front, the comparison or the measurement cache.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls
from torch import nn

from edgeprune.models import stats
from edgeprune.search.budgets import Budgets
from edgeprune.search.results import Candidate

MARGIN = 0.15  # how far off an estimate may be before a candidate counts as hopeless
Work = dict[str, list[float]]  # layer -> [MACs, output elements]


def layer_work(model: nn.Module, input_shape: tuple[int, ...]) -> Work:
    """MACs and output elements of each compute layer: the table's features."""
    return {layer.name: [float(layer.macs), float(np.prod(layer.output_shape))]
            for layer in stats.count(model, input_shape).layers}


@dataclass(frozen=True)
class LatencyTable:
    """Instructions per MAC and per output element of each layer, and a constant."""

    layers: list[str]
    per_mac: list[float]
    per_output: list[float]
    constant: float

    @classmethod
    def fit(cls, samples: Sequence[tuple[Work, float]]) -> LatencyTable:
        """Least squares with non-negative coefficients on (work, measured instructions)."""
        layers = sorted(samples[0][0])
        rows = np.array([[*(w[name][0] for name in layers), *(w[name][1] for name in layers), 1.0]
                         for w, _ in samples])
        coefficients, _ = nnls(rows, np.array([instructions for _, instructions in samples]))
        n = len(layers)
        return cls(layers, list(coefficients[:n]), list(coefficients[n:2 * n]),
                   float(coefficients[-1]))

    @classmethod
    def learn(cls, uniform: Sequence[tuple[Work, float]],
              searched: Sequence[tuple[Work, float]]) -> LatencyTable | None:
        """The table fitted on all samples, or None while there are fewer searched samples than
        coefficients or a searched sample left out of the fit is predicted off by more than
        half the margin."""
        if not searched or len(searched) < 2 * len(searched[0][0]) + 1:
            return None
        samples = [*uniform, *searched]
        for i, (work, instructions) in enumerate(searched):
            rest = [s for j, s in enumerate(samples) if j != len(uniform) + i]
            if abs(cls.fit(rest).predict(work) / instructions - 1) > MARGIN / 2:
                return None
        return cls.fit(samples)

    def predict(self, work: Work) -> float:
        return self.constant + sum(a * work[name][0] + b * work[name][1]
                                   for name, a, b in zip(self.layers, self.per_mac,
                                                         self.per_output))


def hopeless(estimate: float, accuracy: float, measured: Sequence[Candidate],
             budgets: Budgets) -> str | None:
    """Why a candidate need not be measured, or None."""
    optimistic = estimate * (1 - MARGIN)
    if budgets.max_latency and optimistic > budgets.max_latency:
        return f"estimated {estimate:,.0f} instructions, over the latency budget"
    better = [c for c in measured if c.accuracy >= accuracy and c.instructions <= optimistic]
    if better:
        c = min(better, key=lambda c: c.instructions)
        return (f"estimated {estimate:,.0f} instructions, dominated by trial {c.number} "
                f"({c.accuracy:.2%}, {c.instructions:,.0f})")
    return None
