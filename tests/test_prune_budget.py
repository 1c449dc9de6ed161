"""The accuracy budget is reported, nothing unpruned is saved silently, unusable options are errors."""
import json

import pytest

import edgeprune.prune
from edgeprune.cli import main
from edgeprune.prune import serialize
from edgeprune.prune.errors import NothingPrunedError

pytestmark = pytest.mark.xdist_group("prune-budget")  # one worker keeps the module's fixture

SHAPE = (1, 1, 8, 8)
# 90 % of the channels by random choice, 1 finetune epoch: far more than a 0-point budget allows.
HARSH = ["--ratio", "0.9", "--criterion", "random", "--finetune-epochs", "1", "--max-drop", "0"]


@pytest.fixture(scope="module")
def saved(trained, tmp_path_factory):
    path = tmp_path_factory.mktemp("budget") / "trained.pt"
    serialize.save(path, trained, SHAPE, "digits_cnn")
    return path


def test_rejected_single_round_is_reported_and_nothing_written(saved, tmp_path, capsys):
    out, onnx, report = tmp_path / "p.pt", tmp_path / "p.onnx", tmp_path / "r.json"
    assert main(["prune", str(saved), *HARSH, "--out", str(out), "--onnx", str(onnx),
                 "--report", str(report), "--quiet"]) == 1
    assert not out.exists() and not onnx.exists()
    captured = capsys.readouterr()
    written = json.loads(report.read_text())
    rejected = written["rejected"]
    assert written["pruned"] is False and written["after"]["accuracy"] == written["before"]["accuracy"]
    assert (rejected["round"], rejected["rounds"], rejected["kept_round"], rejected["max_drop"]) == (1, 1, 0, 0.0)
    assert rejected["drop"] == pytest.approx(rejected["baseline"] - rejected["accuracy"]) and rejected["drop"] > 0
    message = rejected["message"]
    assert message.startswith(
        f"round 1 of 1 rejected by the accuracy budget: validation accuracy {rejected['baseline']:.2%} -> "
        f"{rejected['accuracy']:.2%}, a drop of {rejected['drop'] * 100:.2f} points, more than the budget "
        "of 0 points (--max-drop); kept the unpruned model: nothing was pruned. To prune more: more "
        "finetune epochs (--finetune-epochs, now 1), more rounds so that each prunes less (--rounds, now 1), "
        "or a larger --max-drop.")
    accuracy = f"{written['before']['accuracy']:.2%}"
    assert captured.out.endswith(f"test accuracy {accuracy} -> {accuracy}\n")  # no budget line: stderr has it
    assert captured.err == (f"edgeprune prune: nothing pruned, nothing written: {message} Or ask for a "
                            "budget-gated search (--rounds with --max-drop), which may keep the unpruned model.\n")


def test_budget_gated_search_may_keep_the_unpruned_model_and_says_so(saved, tmp_path, capsys):
    out, report = tmp_path / "p.pt", tmp_path / "r.json"
    assert main(["prune", str(saved), *HARSH, "--rounds", "1", "--out", str(out), "--report", str(report),
                 "--quiet"]) == 0
    output = capsys.readouterr().out
    assert "budget: round 1 of 1 rejected" in output
    assert output.endswith("nothing pruned within the budget; saved the unpruned model as asked "
                           "(--rounds with --max-drop)\n")
    assert json.loads(report.read_text())["pruned"] is False
    assert serialize.load(out).model[0][0].out_channels == 16


def test_api_raises_with_the_outcome_unless_gated(saved, tmp_path):
    options = dict(ratio=0.9, criterion="random", finetune_epochs=1, max_drop=0.0)
    with pytest.raises(NothingPrunedError) as error:
        edgeprune.prune.prune(saved, tmp_path / "p.pt", **options)
    outcome = error.value.outcome
    assert not outcome.pruned and outcome.rejection.round == 1 and not (tmp_path / "p.pt").exists()
    assert outcome.to_dict()["rejected"]["message"] == outcome.rejection.message()
    assert outcome.after["accuracy"] == outcome.before["accuracy"] and outcome.report.macs_reduction == 0
    gated = edgeprune.prune.prune(saved, tmp_path / "g.pt", rounds=1, **options)
    assert not gated.pruned and gated.rejection == outcome.rejection and (tmp_path / "g.pt").exists()


@pytest.mark.parametrize("args, message", [
    (["--sparsity", "0.5"], "--sparsity does not apply to --method channels (it is an option of: unstructured)"),
    (["--method", "unstructured", "--ratio", "0.5"],
     "--ratio/--layer-ratio does not apply to --method unstructured (it is an option of: channels)"),
    (["--method", "unstructured", "--criterion", "fpgm"],
     "the unstructured method's criteria are magnitude, random, taylor; got 'fpgm'"),
    (["--criterion", "magnitude"],
     "the channels method's criteria are bn_scale, fpgm, l1, l2, lamp, random, taylor; got 'magnitude'"),
    (["--method", "blocks", "--gradual"],
     "--gradual does not apply to --method blocks (it is an option of: unstructured)"),
    (["--method", "lowrank", "--rounds", "2"], "the lowrank method can do at most 1 round(s), got --rounds 2"),
    (["--method", "blocks", "--blocks", "1", "--rounds", "2"],
     "the blocks method can do at most 1 round(s), got --rounds 2"),
    (["--method", "unstructured", "--gradual", "--finetune-epochs", "0"],
     "--gradual raises the sparsity while finetuning: give --finetune-epochs of at least 1"),
    (["--criterion", "l1", "--slimming-epochs", "2"],
     "--slimming-epochs trains the BatchNorm scales for --criterion bn_scale only, not for 'l1'"),
])
def test_options_a_method_cannot_honour_are_errors(tmp_path, capsys, args, message):
    out = tmp_path / "p.pt"  # the checks come before the zoo model is trained
    assert main(["prune", "digits_cnn", *args, "--out", str(out), "--quiet"]) == 2
    assert capsys.readouterr().err == f"edgeprune prune: error: {message}\n"
    assert not out.exists()
