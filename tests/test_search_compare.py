"""The issue-7 comparison figures and the cross-validation folds (no device needed)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edgeprune.models import data
from edgeprune.search import crossval
from edgeprune.search.compare import compare, confirm, decisive, margins, paired_gap
from edgeprune.search.crossval import CrossValidation, folds
from edgeprune.search.results import Candidate
from edgeprune.search.settings import Settings


def point(number: int, instructions: float, uniform: float | None = None) -> Candidate:
    return Candidate(number, {}, 0.9, instructions, 1000, 500, True, uniform, False, {}, 0, 0.0)


UNIFORM = [point(0, 1000, 0.0), point(1, 600, 0.2), point(2, 400, 0.4), point(3, 200, 0.6)]
SEARCHED = [point(10, 450), point(11, 300), point(12, 150)]


def test_figures_follow_the_written_definitions():
    accuracy = {0: 0.98, 1: 0.978, 2: 0.972, 3: 0.95, 10: 0.975, 11: 0.973, 12: 0.96}
    f = compare(UNIFORM + SEARCHED, accuracy)
    assert f["reference"]["trial"] == 0
    assert f["best_uniform_within_1pt"]["trial"] == 2  # 97.2 >= 98 - 1; 0.6 is 3 points off
    assert f["speedup_candidate"]["trial"] == 10  # the most accurate with <= 500 instructions
    assert f["speedup_vs_unpruned"] == pytest.approx(1000 / 450) and f["speedup_met"]
    assert f["reduction_candidate"]["trial"] == 11  # the most accurate with <= 340
    assert f["reduction_vs_best_uniform"] == pytest.approx(0.25) and f["reduction_met"]
    assert f["fastest_searched_within_1pt"]["trial"] == 11
    assert f["fastest_searched_at_uniform_accuracy"]["trial"] == 11
    by_uniform = {r["uniform"]: r for r in f["per_uniform"]}
    assert by_uniform[0.2]["matched"] is None  # nothing searched reaches 97.8
    assert by_uniform[0.6]["matched"]["trial"] == 12
    assert json.dumps(f) and "most accurate searched" in f["definitions"]["equal_accuracy"]


def test_confirmation_rescores_the_deciding_candidates():
    accuracy = {0: 0.98, 1: 0.978, 2: 0.972, 3: 0.95, 10: 0.975, 11: 0.973, 12: 0.96}
    f = compare(UNIFORM + SEARCHED, accuracy)
    assert decisive(f) == [0, 2, 10, 11]
    held = confirm(f, {0: 0.985, 2: 0.970, 10: 0.976, 11: 0.971})
    assert held["speedup_confirmed"] and held["reduction_confirmed"]
    assert held["accuracy"]["reduction_candidate"] == 0.971
    lost = confirm(f, {0: 0.98, 2: 0.975, 10: 0.976, 11: 0.974})  # 11 now below 2
    assert lost["speedup_confirmed"] and not lost["reduction_confirmed"]
    assert not confirm(f, {0: 0.99, 2: 0.975, 10: 0.979, 11: 0.979})["speedup_confirmed"]


def test_margins_pair_the_draws_and_give_their_standard_error():
    accuracy = {0: 0.98, 1: 0.978, 2: 0.972, 3: 0.95, 10: 0.975, 11: 0.973, 12: 0.96}
    f = compare(UNIFORM + SEARCHED, accuracy)
    # per fold draw; trial 11 trails the best uniform (2) by 0.2, 0.4, 0.0, 0.2 points
    draws = {0: [0.98, 0.99, 0.98, 0.97], 2: [0.974, 0.976, 0.970, 0.972],
             10: [0.975, 0.978, 0.972, 0.971], 11: [0.972, 0.972, 0.970, 0.970]}
    m = margins(f, draws)
    assert m["reduction"]["mean"] == pytest.approx(-0.002)
    assert m["reduction"]["standard_error"] == pytest.approx(0.0016330 / 2, rel=1e-4)
    assert m["reduction"]["draws"] == 4
    assert m["speedup"]["mean"] == pytest.approx(0.974 - (0.98 - 0.01))
    assert paired_gap([1.0, 2.0], [1.0, 2.0]) == (0.0, 0.0)  # the draws' common part cancels
    with pytest.raises(ValueError, match="two or more"):
        paired_gap([0.9], [0.8])


def test_only_scored_candidates_count_and_misses_are_reported():
    f = compare(UNIFORM + SEARCHED, {0: 0.98, 1: 0.975, 12: 0.96})
    assert f["best_uniform_within_1pt"]["trial"] == 1
    assert f["speedup_candidate"]["trial"] == 12 and not f["speedup_met"]  # 2 points off
    assert f["reduction_candidate"]["trial"] == 12 and not f["reduction_met"]
    assert f["fastest_searched_within_1pt"] is None
    with pytest.raises(ValueError, match="unpruned"):
        compare(SEARCHED, {10: 0.9})


def test_folds_cover_train_and_test_once_and_leave_validation_out():
    ds = data.digits()
    parts = folds(ds, 5)
    held = np.concatenate([p.x_val for p in parts]).reshape(-1, 64)
    outside = np.concatenate([ds.x_train, ds.x_test]).reshape(-1, 64)
    assert len(held) == len(outside) and len({r.tobytes() for r in held}) == len(
        {r.tobytes() for r in outside})
    assert not {r.tobytes() for r in ds.x_val.reshape(-1, 64)} & {r.tobytes() for r in held}
    for p in parts:
        assert len(p.x_train) + len(p.x_val) == len(outside)
        assert np.bincount(p.y_val).min() >= 0.8 * np.bincount(p.y_val).max()  # stratified


@pytest.mark.slow  # trains and scores two folds
def test_crossvalidation_scores_every_held_out_sample_and_resumes(tmp_path, monkeypatch):
    ds = data.digits()
    settings = Settings(precision="fp32", finetune_epochs=1, finetune_lr=1e-2, distill=0.0)
    path = tmp_path / "cv.json"
    cv = CrossValidation("digits_cnn", ds, settings, 2, path, k=2)
    score = cv.score({"1.0": 0.5}, {"0.0": 16, "1.0": 16})
    assert score.total == len(ds.y_train) + len(ds.y_test) and 0.3 < score.accuracy <= 1
    monkeypatch.setattr(crossval, "build", lambda *a: pytest.fail("scored twice"))
    again = CrossValidation("digits_cnn", ds, settings, 2, path, k=2)
    assert again.score({"1.0": 0.5}, {"0.0": 16, "1.0": 16}) == score
