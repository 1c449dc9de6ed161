"""A per-layer latency table learned from the search's own measurements, to skip hopeless
candidates before compiling and measuring them.

Per compute layer the table holds instructions per MAC and per output element, fitted by
non-negative least squares on the measured candidates (plus one constant). The kernels' register
blocks (`compile.schedule.channels_per_pass`) make a layer's cost per MAC step with its channel
count: a layer computing fewer output channels per pass pays one factor per block size on its MACs, shared by
all layers and chosen on a grid as the one that fits best. Compiler decisions the features do
not see (how far LLVM unrolls a loop of a given length) still leave some error, so the table
measures its own: each measured searched candidate is predicted with it left out of the fit
(uniform candidates alone do not tell the layers apart), and the margin is twice the worst
error, at least 15 %. A table whose margin would exceed 50 % is not used. A candidate is skipped
when its estimate, better by the margin, is over the latency budget or dominated by a measured
candidate at least as accurate. Skipped candidates tell the sampler their estimate; they never
enter the Pareto front, the comparison or the measurement cache.
"""
from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls
from torch import nn

from edgeprune.compile.schedule import channels_per_pass
from edgeprune.models import stats
from edgeprune.search.budgets import Budgets
from edgeprune.search.results import Candidate

MARGIN = 0.15  # the least error an estimate is allowed before a candidate counts as hopeless
MAX_MARGIN = 0.5  # a table needing a wider margin is not used
FACTORS = np.round(np.arange(0.5, 2.0001, 0.05), 2)  # the grid of per-block-size MAC factors
Work = dict[str, list[float]]  # layer -> [MACs, output elements, output channels per pass]


def layer_work(model: nn.Module, input_shape: tuple[int, ...], dsp: bool) -> Work:
    """MACs, output elements and output channels per pass (`compile.schedule.channels_per_pass`,
    for the device's kernels: `dsp` if its core has the DSP extension) of each compute layer: the
    table's features."""
    work = {}
    for layer in stats.count(model, input_shape).layers:
        outputs = int(np.prod(layer.output_shape))
        per_pass = channels_per_pass(layer.kind, layer.output_shape[0], dsp, layer.macs // outputs)
        work[layer.name] = [float(layer.macs), float(outputs), float(per_pass)]
    return work


def scaled_macs(work: list[float], block_factors: dict[int, float]) -> float:
    """A layer's MACs times its register block's factor (1 for the widest block)."""
    return work[0] * block_factors.get(int(work[2]), 1.0)


def _blocks(samples: Sequence[tuple[Work, float]]) -> list[int]:
    """The register blocks narrower than the widest one seen: each gets a fitted factor."""
    seen = {int(w[2]) for work, _ in samples for w in work.values()}
    return sorted(seen - {max(seen)})


@dataclass(frozen=True)
class LatencyTable:
    """Instructions per MAC and per output element of each layer, a constant, and the factor
    on the MACs of a layer computing fewer output channels per pass than the widest block."""

    layers: list[str]
    per_mac: list[float]
    per_output: list[float]
    constant: float
    block_factors: dict[int, float]
    margin: float = MARGIN  # how far off an estimate may be: twice the worst left-out error

    @classmethod
    def fit(cls, samples: Sequence[tuple[Work, float]],
            block_factors: dict[int, float] | None = None) -> LatencyTable:
        """Least squares with non-negative coefficients on (work, measured instructions); the
        block factors, unless given, are the grid point with the smallest residual."""
        if block_factors is None:
            blocks = _blocks(samples)
            grid = [dict(zip(blocks, point))
                    for point in itertools.product(FACTORS, repeat=len(blocks))]
            return min((cls._solve(samples, factors) for factors in grid),
                       key=lambda solved: solved[1])[0]
        return cls._solve(samples, block_factors)[0]

    @classmethod
    def _solve(cls, samples: Sequence[tuple[Work, float]],
               block_factors: dict[int, float]) -> tuple[LatencyTable, float]:
        """The table for fixed block factors, and its residual norm."""
        layers = sorted(samples[0][0])
        rows = np.array([[*(scaled_macs(w[name], block_factors) for name in layers),
                          *(w[name][1] for name in layers), 1.0] for w, _ in samples])
        coefficients, residual = nnls(rows, np.array([instr for _, instr in samples]))
        n = len(layers)
        return cls(layers, list(coefficients[:n]), list(coefficients[n:2 * n]),
                   float(coefficients[-1]), block_factors), residual

    @classmethod
    def learn(cls, uniform: Sequence[tuple[Work, float]],
              searched: Sequence[tuple[Work, float]]) -> LatencyTable | None:
        """The table fitted on all samples with its margin, or None while there are fewer
        searched samples than coefficients or the margin would exceed MAX_MARGIN."""
        samples = [*uniform, *searched]
        if not searched or len(searched) < 2 * len(searched[0][0]) + 1 + len(_blocks(samples)):
            return None
        table = cls.fit(samples)
        worst = max(abs(cls.fit([s for j, s in enumerate(samples) if j != len(uniform) + i],
                                table.block_factors).predict(work) / instructions - 1)
                    for i, (work, instructions) in enumerate(searched))
        margin = max(MARGIN, 2 * worst)
        return dataclasses.replace(table, margin=margin) if margin <= MAX_MARGIN else None

    def predict(self, work: Work) -> float:
        return self.constant + sum(
            a * scaled_macs(work[name], self.block_factors) + b * work[name][1]
            for name, a, b in zip(self.layers, self.per_mac, self.per_output))


def hopeless(estimate: float, accuracy: float, measured: Sequence[Candidate],
             budgets: Budgets, margin: float = MARGIN) -> str | None:
    """Why a candidate need not be measured, or None."""
    optimistic = estimate * (1 - margin)
    said = f"estimated {estimate:,.0f} instructions (margin {margin:.0%})"
    if budgets.max_latency and optimistic > budgets.max_latency:
        return f"{said}, over the latency budget"
    better = [c for c in measured if c.accuracy >= accuracy and c.instructions <= optimistic]
    if better:
        c = min(better, key=lambda c: c.instructions)
        return f"{said}, dominated by trial {c.number} ({c.accuracy:.2%}, {c.instructions:,.0f})"
    return None
