"""The Pareto front, the choice within budgets and the budget constraints (no device needed)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgeprune.search.budgets import Budgets
from edgeprune.search.errors import SearchError
from edgeprune.search.measure import Measurement
from edgeprune.search.results import Candidate, choose, dominates, near_front, pareto_front


def point(number: int, accuracy: float, instructions: float, feasible: bool = True) -> Candidate:
    return Candidate(number, {}, accuracy, instructions, 1000, 500, feasible, None, False, {}, 0,
                     0.0)


def test_front_is_non_dominated_and_complete():
    rng = np.random.default_rng(0)
    points = [point(i, float(a), float(n)) for i, (a, n) in
              enumerate(zip(rng.integers(80, 100, 60) / 100, rng.integers(1, 40, 60) * 1000))]
    front = pareto_front(points)
    assert not any(dominates(a, b) for a, b in itertools.permutations(front, 2))
    outside = [p for p in points if p not in front]
    assert all(any(dominates(f, p) or (f.accuracy, f.instructions) == (p.accuracy, p.instructions)
                   for f in front) for p in outside)
    assert [f.instructions for f in front] == sorted(f.instructions for f in front)


def test_equal_points_keep_the_earliest_trial():
    assert [p.number for p in pareto_front([point(3, 0.9, 100), point(1, 0.9, 100)])] == [1]


def test_near_front_keeps_what_the_noise_cannot_separate():
    points = [point(0, 0.97, 100), point(1, 0.968, 150), point(2, 0.96, 200), point(3, 0.98, 300)]
    assert [p.number for p in pareto_front(points)] == [0, 3]
    assert [p.number for p in near_front(points, 0.005)] == [0, 1, 3]  # 2 is 1 point worse
    assert near_front(points, 0.0) == pareto_front(points)


def test_choice_is_most_accurate_then_fastest():
    assert choose([point(0, 0.95, 300), point(1, 0.97, 500), point(2, 0.97, 400)]).number == 2
    assert choose([]) is None


def test_budget_violations_are_relative_and_signed():
    m = Measurement(150_000, [], 20_000, 8_000, 0.0)
    v = Budgets(max_latency=100_000, max_flash=40_000).violations(m)
    assert v == {"latency": pytest.approx(0.5), "flash": pytest.approx(-0.5), "ram": 0.0}
    with pytest.raises(SearchError, match="max-ram must be positive"):
        Budgets(max_ram=0)


def test_the_report_labels_latency_with_the_device_unit(tmp_path):
    """A search on a serial board counts cycles: its table, budgets and report say so."""
    from edgeprune.search import report
    from edgeprune.search.results import SearchResult
    from edgeprune.search.settings import Settings

    fast, slow = point(0, 0.9, 2000), point(1, 0.95, 5000)
    budgets = Budgets(max_latency=6000)
    result = SearchResult("digits_cnn", "s", "sqlite:///s.db", "tpe",
                          Settings(device="serial:///dev/ttyACM0?board=nucleo-l4r5zi"), budgets, 2,
                          [fast, slow], [], [fast, slow], chosen=slow, unit="cycles",
                          method="DWT cycle counter on the board")
    header = report.table(result.front, fast, unit="cycles").splitlines()[0]
    assert "cycles" in header and "instructions" not in header
    report.markdown(result, tmp_path / "report.md")
    text = (tmp_path / "report.md").read_text()
    assert "latency <= 6,000 cycles" in text and "(cycles: DWT cycle counter on the board)" in text
    assert "instructions" not in text and "QEMU" not in text
