"""k-fold re-scoring of the search's chosen candidate and its uniform neighbour (issue 21, item 5)."""
from __future__ import annotations

import statistics

import numpy as np
import pytest
import torch
from torch import nn

from edgeprune.cli import build_parser
from edgeprune.search import space
from edgeprune.search.errors import SearchError
from edgeprune.search.report import rescore_lines
from edgeprune.search.rescore import rescore, uniform_neighbour
from edgeprune.search.results import Candidate
from edgeprune.search.settings import Settings
from edgeprune.task import Task

SHAPE = (1, 1, 6, 6)


def _task(evaluate=None) -> Task:
    """Two classes: the top half of the image shifted up or down; 90 samples to fold, 37 to validate."""
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 127)
    x = rng.normal(0, 1, (127, *SHAPE[1:])).astype(np.float32)
    x[:, 0, :3] += np.where(y == 1, 1.5, -1.5)[:, None, None]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))
    return Task(model, SHAPE, (x[:90], y[:90]), (x[90:], y[90:]), evaluate=evaluate, name="halves")


def _candidate(number: int, task: Task, ratio: float, instructions: float, uniform: float | None) -> Candidate:
    names = space.groups(task.model, SHAPE)
    return Candidate(number, {name: ratio for name in names}, 0.9, instructions, 1, 1, True, uniform, False, {}, 0, 0.0)


def test_rescore_scores_both_candidates_on_held_out_folds_outside_validation(tmp_path):
    task = _task()
    chosen = _candidate(7, task, 0.3, 1000.0, None)
    uniform = [_candidate(0, task, 0.0, 2000.0, 0.0), _candidate(1, task, 0.5, 900.0, 0.5)]
    neighbour = uniform_neighbour(chosen, uniform)
    assert neighbour.number == 1  # 900 instructions is nearer 1000 than 2000 is
    settings = Settings(round_to=2, finetune_epochs=2, finetune_lr=5e-3, distill=0.8, calibration_samples=32)
    result = rescore(task, chosen, neighbour, settings, 3, train_epochs=15, work=tmp_path)
    assert result["held_out"] == [30, 30, 30]  # the 90 training samples, the 37 validation ones left out
    gaps = []
    for key, c in (("chosen", chosen), ("neighbour", neighbour)):
        entry = result[key]
        assert entry["trial"] == c.number and len(entry["scores"]) == 3
        # each fold's score is top-1 over its 30 held-out samples (not over the 37 of validation)
        assert all(abs(s * 30 - round(s * 30)) < 1e-9 for s in entry["scores"])
        assert entry["mean"] == pytest.approx(statistics.fmean(entry["scores"]))
        assert entry["standard_error"] == pytest.approx(statistics.stdev(entry["scores"]) / 3 ** 0.5)
        gaps.append(entry["scores"])
    assert max(result["chosen"]["scores"]) > 0.7  # the task is learnable: the retrained model learned it
    differences = [a - b for a, b in zip(*gaps)]
    assert result["gap"]["mean"] == pytest.approx(statistics.fmean(differences))
    lines = rescore_lines(result, "accuracy")
    assert "trial 7" in lines[1] and "trial 1 (uniform 0.5" in lines[2] and lines[3].startswith("  gap chosen")


def test_rescore_refuses_a_task_with_its_own_evaluate_and_too_few_folds(tmp_path):
    task = _task(evaluate=lambda model: 0.5)
    c = _candidate(0, task, 0.0, 1.0, 0.0)
    with pytest.raises(SearchError, match="own evaluate"):
        rescore(task, c, c, Settings(), 3, 1, tmp_path)
    with pytest.raises(SearchError, match="at least 2 folds"):
        rescore(_task(), c, c, Settings(), 1, 1, tmp_path)


def test_search_command_takes_rescore_folds():
    args = build_parser().parse_args(["search", "digits_cnn", "-o", "x", "--rescore-folds", "4"])
    assert args.rescore_folds == 4
