"""Iterative prune -> finetune -> evaluate: rounds, accuracy budget, resume; prune() and CLI."""
import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

import edgeprune.prune
from edgeprune.cli import main
from edgeprune.models import zoo
from edgeprune.models.train import Recipe, train
from edgeprune import task as tasks
from edgeprune.prune import serialize
from edgeprune.prune.errors import PruneError
from edgeprune.prune.schedule import ScheduleConfig, iterative_prune
from edgeprune.prune.steps import ChannelStep

SHAPE = (1, 1, 8, 8)
STEP = ChannelStep(ratios=0.5, round_to=4)
CONFIG = ScheduleConfig(rounds=2, max_drop=0.05, finetune=Recipe(epochs=2, lr=3e-3))


def test_rounds_shrink_the_model_within_budget(trained, digits):
    result = iterative_prune(trained, SHAPE, digits, STEP, CONFIG, progress=False)
    assert [r["round"] for r in result.history] == [1, 2]
    assert result.history[0]["macs"] > result.history[1]["macs"]
    assert all(r["accepted"] for r in result.history) and result.rejection is None
    assert result.report.macs_after == result.history[-1]["macs"]
    assert [m.out_channels for m in result.model.modules() if hasattr(m, "out_channels")] == [
        8, 16, 16]
    assert trained[0][0].out_channels == 16  # the input model is left alone
    assert result.baseline["accuracy"] - result.history[-1]["accuracy"] <= CONFIG.max_drop


def test_stops_when_accuracy_budget_is_exceeded(trained, digits):
    config = ScheduleConfig(rounds=2, max_drop=0.0, finetune=Recipe(epochs=1))
    result = iterative_prune(trained, SHAPE, digits, ChannelStep(ratios=0.9, criterion="random"), config,
                             progress=False)
    assert [r["accepted"] for r in result.history] == [False] and result.accepted_rounds == 0
    assert result.report.macs_after == result.report.macs_before  # the previous model is kept
    rejection = result.rejection
    assert (rejection.round, rejection.rounds, rejection.kept_round, rejection.max_drop) == (1, 2, 0, 0.0)
    assert rejection.accuracy == result.history[0]["accuracy"]
    assert rejection.drop == pytest.approx(result.baseline["accuracy"] - rejection.accuracy)
    assert rejection.message().startswith(
        f"round 1 of 2 rejected by the accuracy budget: validation accuracy {result.baseline['accuracy']:.2%} -> "
        f"{rejection.accuracy:.2%}, a drop of {rejection.drop * 100:.2f} points, more than the budget of "
        "0 points (--max-drop); kept the unpruned model: nothing was pruned, round(s) 2-2 not run.")


def test_resume_after_interruption_matches_uninterrupted_run(trained, digits, tmp_path,
                                                             monkeypatch):
    reference = iterative_prune(trained, SHAPE, digits, STEP, CONFIG, progress=False)
    checkpoint = tmp_path / "ckpt.pt"
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return train(*args, **kwargs)

    monkeypatch.setattr(tasks, "train", interrupted)
    with pytest.raises(KeyboardInterrupt):
        iterative_prune(trained, SHAPE, digits, STEP, CONFIG, checkpoint, progress=False)
    assert serialize.load(checkpoint, lambda: zoo.build_model("digits_cnn")).extra["round"] == 1
    monkeypatch.setattr(tasks, "train", train)
    resumed = iterative_prune(trained, SHAPE, digits, STEP, CONFIG, checkpoint, progress=False)
    assert resumed.history == reference.history
    x = torch.from_numpy(digits.x_test)
    torch.testing.assert_close(resumed.model(x), reference.model(x))
    with pytest.raises(PruneError, match="other settings"):
        iterative_prune(trained, SHAPE, digits, ChannelStep(ratios=0.3), CONFIG, checkpoint)


def test_prune_function_structured(tmp_path):
    outcome = edgeprune.prune.prune("digits_cnn", tmp_path / "p.pt", ratio=0.3, train_epochs=10,
                                    finetune_epochs=3, max_drop=0.1)
    assert outcome.report.macs_reduction > 0.4
    assert outcome.after["accuracy"] > 0.9 and [f"f1_{c}" in outcome.after for c in range(11)] == [True] * 10 + [False]
    assert serialize.load(tmp_path / "p.pt").model[1][0].out_channels == 22


def test_cli_help_and_bad_input(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["prune", "--help"])
    assert exit_info.value.code == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "--criterion CRITERION bn_scale, fpgm, l1, l2, lamp, magnitude, random, taylor;" in printed
    assert main(["prune", "digits_cnn", "--ratio", "1.5", "--out", str(tmp_path / "x.pt")]) == 2
    assert "outside [0, 1)" in capsys.readouterr().err
    assert main(["prune", "nosuchmodel", "--out", str(tmp_path / "x.pt")]) == 2
    assert "neither a zoo model" in capsys.readouterr().err


def test_cli_unstructured_writes_model_onnx_and_report(tmp_path):
    paths = {k: tmp_path / f"m.{k}" for k in ("pt", "onnx", "json")}
    assert main(["prune", "digits_cnn", "--method", "unstructured", "--sparsity", "0.5", "--max-drop", "100",
                 "--train-epochs", "3", "--finetune-epochs", "1",
                 "--out", str(paths["pt"]), "--onnx", str(paths["onnx"]),
                 "--report", str(paths["json"]), "--quiet"]) == 0
    report = json.loads(paths["json"].read_text())
    assert report["sparsity"]["sparsity"] == pytest.approx(0.5, abs=0.01)
    model = serialize.load(paths["pt"]).model
    x = np.random.default_rng(0).random(SHAPE, dtype=np.float32)
    session = ort.InferenceSession(str(paths["onnx"]))
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, model(torch.from_numpy(x)).detach().numpy(), atol=1e-4)
