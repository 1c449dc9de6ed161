"""The per-layer latency table and the hopeless-candidate rule (no device needed)."""
from __future__ import annotations

import numpy as np
import pytest

from edgeprune.models import zoo
from edgeprune.prune.structured import prune_channels
from edgeprune.search.budgets import Budgets
from edgeprune.search.estimate import LatencyTable, hopeless, layer_work
from edgeprune.search.results import Candidate

SHAPE = (1, 1, 8, 8)
COST = {"0.0": (9.0, 2.0), "1.0": (3.6, 5.0), "2.0": (3.5, 4.0), "3.2": (4.0, 30.0)}


def work(ratios: dict[str, float]):
    model = zoo.build_model("digits_cnn")
    prune_channels(model, SHAPE, ratios)
    return layer_work(model, SHAPE)


def instructions(w) -> float:
    return 1500 + sum(COST[name][0] * macs + COST[name][1] * out for name, (macs, out) in w.items())


RNG = np.random.default_rng(0)
UNIFORM = [work(dict.fromkeys(["0.0", "1.0", "2.0"], r)) for r in np.arange(0, 0.85, 0.1)]
SEARCHED = [work(dict(zip(["0.0", "1.0", "2.0"], RNG.choice(np.arange(0, 0.85, 0.1), 3))))
            for _ in range(12)]


def test_features_are_macs_and_outputs_per_layer():
    assert work({})["1.0"] == [16 * 32 * 9 * 16, 32 * 4 * 4]


def test_table_learns_per_layer_costs_from_measurements():
    uniform = [(w, instructions(w)) for w in UNIFORM]
    searched = [(w, instructions(w)) for w in SEARCHED]
    assert LatencyTable.learn(uniform, searched[:8]) is None  # fewer than 2 x 4 layers + 1
    table = LatencyTable.learn(uniform, searched)
    fresh = work({"0.0": 0.7, "1.0": 0.2, "2.0": 0.5})
    assert table.predict(fresh) == pytest.approx(instructions(fresh), rel=1e-3)


def test_table_is_not_used_when_it_mispredicts_a_left_out_candidate():
    uniform = [(w, instructions(w)) for w in UNIFORM]
    searched = [(w, instructions(w) * (1.3 if i == 3 else 1.0)) for i, w in enumerate(SEARCHED)]
    assert LatencyTable.learn(uniform, searched) is None


def point(number: int, accuracy: float, instructions: float) -> Candidate:
    return Candidate(number, {}, accuracy, instructions, 0, 0, True, None, False, {}, 0, 0.0)


def test_hopeless_candidates_are_over_budget_or_dominated_with_a_margin():
    measured = [point(1, 0.97, 100_000), point(2, 0.95, 50_000)]
    assert "over the latency budget" in hopeless(200_000, 0.99, measured, Budgets(150_000))
    assert hopeless(160_000, 0.99, measured, Budgets(150_000)) is None  # within 15 %
    assert "dominated by trial 1" in hopeless(200_000, 0.96, measured, Budgets())
    assert hopeless(110_000, 0.96, measured, Budgets()) is None  # 15 % margin
    assert hopeless(200_000, 0.98, measured, Budgets()) is None  # more accurate than all
