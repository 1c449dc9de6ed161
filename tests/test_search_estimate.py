"""The per-layer latency table and the hopeless-candidate rule (no device needed)."""
from __future__ import annotations

import numpy as np
import pytest
from torch import nn

from edgeprune.models import zoo
from edgeprune.prune.structured import prune_channels
from edgeprune.search.budgets import Budgets
from edgeprune.search.estimate import MARGIN, LatencyTable, hopeless, layer_work
from edgeprune.search.results import Candidate

SHAPE = (1, 1, 8, 8)
COST = {"0.0": (9.0, 2.0), "1.0": (3.6, 5.0), "2.0": (3.5, 4.0), "3.2": (4.0, 30.0)}
STEPS = {4: 1.0, 2: 1.15, 1: 1.3}  # per-MAC cost of 4, 2 or 1 output channels per pass


def work(ratios: dict[str, float], dsp: bool = False):
    model = zoo.build_model("digits_cnn")
    prune_channels(model, SHAPE, ratios)
    return layer_work(model, SHAPE, dsp)


def instructions(w) -> float:
    return 1500 + sum(COST[name][0] * macs * STEPS[int(block)] + COST[name][1] * out
                      for name, (macs, out, block) in w.items())


RNG = np.random.default_rng(0)
UNIFORM = [work(dict.fromkeys(["0.0", "1.0", "2.0"], r)) for r in np.arange(0, 0.85, 0.1)]
SEARCHED = [work(dict(zip(["0.0", "1.0", "2.0"], RNG.choice(np.arange(0, 0.85, 0.1), 3))))
            for _ in range(12)]


def test_features_are_macs_outputs_and_register_block_per_layer():
    assert work({})["1.0"] == [16 * 32 * 9 * 16, 32 * 4 * 4, 4]
    assert work({"1.0": 0.2})["1.0"][2] == 1  # 25 channels: one at a time
    assert work({"1.0": 0.3})["1.0"][2] == 2  # 22 channels: blocks of 2


def test_dsp_kernels_keep_their_tile_for_any_channel_count():
    features = work({"1.0": 0.2}, dsp=True)  # 25 channels in layer 1.0
    assert [features[name][2] for name in ("0.0", "1.0", "2.0", "3.2")] == [2, 2, 2, 4]  # conv 2, dense 4


def test_dsp_convolutions_with_short_reductions_compute_one_channel_per_pass():
    model = nn.Sequential(nn.Conv2d(2, 16, 2, stride=2), nn.Conv2d(16, 8, 1), nn.Conv2d(8, 8, 1))
    features = layer_work(model, (1, 2, 8, 8), dsp=True)  # reductions of 8, 16 and 8
    assert [block for _, _, block in features.values()] == [1, 2, 1]  # the weights-stationary GEMM: 1
    assert [block for _, _, block in layer_work(model, (1, 2, 8, 8), dsp=False).values()] == [4, 4, 4]


def test_table_learns_per_layer_costs_from_measurements():
    uniform = [(w, instructions(w)) for w in UNIFORM]
    searched = [(w, instructions(w)) for w in SEARCHED]
    assert LatencyTable.learn(uniform, searched[:8]) is None  # fewer than 2 x 4 layers + 3
    table = LatencyTable.learn(uniform, searched)
    assert table.block_factors == pytest.approx({1: 1.3, 2: 1.15})
    fresh = work({"0.0": 0.7, "1.0": 0.2, "2.0": 0.5})
    assert table.predict(fresh) == pytest.approx(instructions(fresh), rel=1e-3)


def test_without_block_factors_the_steps_are_mispredicted():
    samples = [(w, instructions(w)) for w in [*UNIFORM, *SEARCHED]]
    flat = LatencyTable.fit(samples, block_factors={})
    assert max(abs(flat.predict(w) / y - 1) for w, y in samples) > 0.02


def test_table_margin_is_twice_its_worst_left_out_error_and_a_wide_one_is_not_used():
    uniform = [(w, instructions(w)) for w in UNIFORM]
    exact = LatencyTable.learn(uniform, [(w, instructions(w)) for w in SEARCHED])
    assert exact.margin == MARGIN  # no error: the least margin
    off = [(w, instructions(w) * (1.12 if i == 3 else 1.0)) for i, w in enumerate(SEARCHED)]
    # Left out, the 12 % outlier is predicted 1 - 1 / 1.12 = 10.7 % low.
    assert LatencyTable.learn(uniform, off).margin == pytest.approx(2 * (1 - 1 / 1.12))
    wild = [(w, instructions(w) * (1.5 if i == 3 else 1.0)) for i, w in enumerate(SEARCHED)]
    assert LatencyTable.learn(uniform, wild) is None


def point(number: int, accuracy: float, instructions: float) -> Candidate:
    return Candidate(number, {}, accuracy, instructions, 0, 0, True, None, False, {}, 0, 0.0)


def test_hopeless_candidates_are_over_budget_or_dominated_with_a_margin():
    measured = [point(1, 0.97, 100_000), point(2, 0.95, 50_000)]
    assert "over the latency budget" in hopeless(200_000, 0.99, measured, Budgets(150_000))
    assert hopeless(160_000, 0.99, measured, Budgets(150_000)) is None  # within 15 %
    assert "dominated by trial 1" in hopeless(200_000, 0.96, measured, Budgets())
    assert hopeless(110_000, 0.96, measured, Budgets()) is None  # 15 % margin
    assert hopeless(200_000, 0.98, measured, Budgets()) is None  # more accurate than all
    assert hopeless(110_000, 0.96, measured, Budgets(), margin=0.05) is not None
