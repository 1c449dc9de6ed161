"""Tasks (issue 21): data in every accepted form, clear errors for bad tasks, model files loaded
safely, metrics beyond top-1 and the AD auto-encoder trained and scored as an anomaly detector."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import precision_recall_fscore_support, roc_auc_score
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from edgeprune.cli import main
from edgeprune.models import data, zoo
from edgeprune.models.metrics import evaluate, reconstruction_errors
from edgeprune.models.train import Recipe
from edgeprune.task import CallableError, Task, TaskError, load_weights, zoo_task
from edgeprune.taskfile import load_task

SHAPE = (1, 1, 8, 8)


def small() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 10))


@pytest.fixture(scope="module")
def arrays(digits):
    return digits.x_train[:200], digits.y_train[:200]


def test_every_data_form_reads_to_the_same_arrays(arrays, tmp_path):
    x, y = arrays
    np.savez(tmp_path / "d.npz", x=x, y=y)
    forms = [(x, y), (torch.from_numpy(x), torch.from_numpy(y)), str(tmp_path / "d.npz"),
             TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
             DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=32)]
    for form in forms:
        task = Task(small(), SHAPE, train=form, validation=form)
        np.testing.assert_array_equal(task.data.x_train, x)
        np.testing.assert_array_equal(task.data.y_val, y)
    split = Task(small(), SHAPE, train=(x, y))  # no validation: 20 % split off, stratified
    assert (len(split.data.x_train), len(split.data.x_val)) == (160, 40)
    assert split.validation_samples == 40 and split.metric_name == "accuracy"


@pytest.mark.parametrize("make, message", [
    (lambda x, y: Task("net", SHAPE, (x, y)), "task.model is a str, not a torch nn.Module"),
    (lambda x, y: Task(small(), (1, 3, 8, 8), (x, y)),
     "task.model fails on an input of task.input_shape (1, 3, 8, 8): RuntimeError"),
    (lambda x, y: Task(small(), SHAPE, (x[:, 0], y)),
     "task.train: samples have shape (200, 8, 8); the model input (1, 1, 8, 8) needs (N, 1, 8, 8)"),
    (lambda x, y: Task(small(), SHAPE, (x, y[:10])),
     "task.train: y has shape (10,); it needs one label per sample (200,)"),
    (lambda x, y: Task(small(), SHAPE, (x, y + 5)), "task data: labels go from 5 to 14, but the model has 10 outputs"),
    (lambda x, y: Task(small(), SHAPE, (x, y), evaluate=3), "task.evaluate is a int, not a function"),
    (lambda x, y: Task(small(), SHAPE), "task.train is missing: the default finetune needs training data"),
    (lambda x, y: Task(small(), SHAPE, x), "task.train has no labels: the default finetune and evaluate"),
])
def test_bad_tasks_name_the_problem(arrays, make, message):
    with pytest.raises(TaskError) as error:
        make(*arrays)
    assert str(error.value).startswith(message)


def test_user_callables_that_fail_are_clear_errors(arrays):
    x, y = arrays
    nan = Task(small(), SHAPE, (x, y), evaluate=lambda model: math.nan)
    with pytest.raises(CallableError, match=r"^task.evaluate returned NaN for 'score'; candidates cannot be ranked"):
        nan.score(nan.model)
    keyless = Task(small(), SHAPE, (x, y), evaluate=lambda model: {"f1": 0.5, "recall": 0.4})
    with pytest.raises(TaskError, match=r"returned \['f1', 'recall'\], without the metric 'score'; set task.metric"):
        keyless.score(keyless.model)
    assert Task(small(), SHAPE, (x, y), evaluate=lambda model: {"f1": 0.5}, metric="f1").score(small()) == 0.5

    def broken(model, epochs):
        raise ValueError(f"no GPU for {epochs} epochs")

    failing = Task(small(), SHAPE, (x, y), finetune=broken)
    with pytest.raises(CallableError) as error:
        failing.tune(failing.model, Recipe(epochs=3))
    assert str(error.value) == "task.finetune raised ValueError: no GPU for 3 epochs"
    assert 'raise ValueError(f"no GPU for {epochs} epochs")' in error.value.trace
    with pytest.raises(TaskError, match="on_step needs edgeprune's finetune recipe"):
        failing.tune(failing.model, Recipe(epochs=3), on_step=print)


TASK_FILE = """
import numpy as np
from torch import nn
from edgeprune.models import data
from edgeprune.task import Task

ds = data.digits()
model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))
task = Task(model, (1, 1, 8, 8), (ds.x_train[:100], ds.y_train[:100]), (ds.x_val[:50], ds.y_val[:50]), **OPTIONS)
number = 3


def make():
    return task
"""


def task_file(tmp_path, options: str = "{}") -> str:
    path = tmp_path / "mine.py"
    path.write_text(TASK_FILE.replace("**OPTIONS", f"**{options}"))
    return str(path)


def test_task_references_and_their_errors(tmp_path, capsys):
    path = task_file(tmp_path)
    assert load_task(f"{path}:task").data.x_val.shape == (50, 1, 8, 8)
    assert load_task(f"{path}:make").name == "task"  # a function returning the task
    assert load_task("digits_cnn").trained is False  # zoo names are ready-made tasks
    for reference, message in [
        (f"{path}:tusk", f"task {path} has no attribute 'tusk'; it defines: Task, data, ds, make, model, "
                         "nn, np, number, task"),
        (f"{path}:number", f"task {path}:number is a int, not an edgeprune.task.Task"),
        (f"{tmp_path}/none.py:task", f"task file {tmp_path}/none.py: no such file"),
        ("no_such_package.tasks:task", "task module 'no_such_package.tasks' not found (is it on PYTHONPATH?)"),
    ]:
        assert main(["prune", reference, "--out", str(tmp_path / "p.pt"), "--quiet"]) == 2
        assert capsys.readouterr().err == f"edgeprune prune: error: {message}\n"
    assert not (tmp_path / "p.pt").exists()


def test_a_finetune_that_raises_or_an_evaluate_giving_nan_stops_prune_with_exit_2(tmp_path, capsys):
    nan = task_file(tmp_path, '{"evaluate": lambda model: float("nan")}')
    assert main(["prune", f"{nan}:task", "--out", str(tmp_path / "p.pt"), "--quiet"]) == 2
    assert capsys.readouterr().err == ("edgeprune prune: error: task.evaluate returned NaN for 'score'; "
                                       "candidates cannot be ranked on it\n")
    assert main(["search", f"{nan}:task", "-o", str(tmp_path / "s"), "--quiet"]) == 2  # scored before the study
    assert capsys.readouterr().err.startswith("edgeprune search: error: task.evaluate returned NaN for 'score'")
    assert not (tmp_path / "s").exists()
    raising = task_file(tmp_path, '{"finetune": lambda model, epochs: 1 / 0}')
    assert main(["prune", f"{raising}:task", "--out", str(tmp_path / "p.pt"), "--quiet"]) == 2
    assert capsys.readouterr().err == ("edgeprune prune: error: task.finetune raised ZeroDivisionError: "
                                       "division by zero\n")
    assert not (tmp_path / "p.pt").exists()


def test_pickled_models_are_refused_unless_trusted_and_state_dicts_need_a_factory(trained, tmp_path, capsys):
    pickled, weights = tmp_path / "whole.pt", tmp_path / "weights.pt"
    torch.save(trained, pickled)
    torch.save(trained.state_dict(), weights)
    args = ["--ratio", "0.25", "--finetune-epochs", "1", "--out", str(tmp_path / "p.pt"), "--quiet"]
    assert main(["prune", str(pickled), *args]) == 2
    assert capsys.readouterr().err == (
        f"edgeprune prune: error: {pickled} is a pickled model, which edgeprune does not load by default "
        "(unpickling runs code from the file): describe the model in a task file (README, 'Your own model'), "
        "or pass --trust-pickle with --input-shape if you trust the file\n")
    assert main(["prune", str(pickled), "--trust-pickle", *args]) == 2
    assert "a pickled model needs --input-shape" in capsys.readouterr().err
    assert main(["prune", str(weights), *args]) == 2
    assert capsys.readouterr().err == (
        f"edgeprune prune: error: {weights} holds weights only (a state dict): load them in a task file with "
        "edgeprune.task.load_weights(YourModel, path) (README, 'Your own model')\n")
    assert not (tmp_path / "p.pt").exists()
    assert main(["prune", str(pickled), "--trust-pickle", "--input-shape", "1,1,8,8", *args]) == 0
    assert "test accuracy" in capsys.readouterr().out
    loaded = load_weights(lambda: zoo.build_model("digits_cnn"), weights)
    x = torch.from_numpy(data.digits().x_val[:4])
    torch.testing.assert_close(loaded(x), trained.eval()(x))
    with pytest.raises(TaskError, match="the weights do not fit the factory's model"):
        load_weights(small, weights)


def test_per_class_precision_recall_and_f1_match_scikit_learn(trained, digits):
    metrics = evaluate(trained, digits.x_val, digits.y_val, 10)
    predicted = trained(torch.from_numpy(digits.x_val)).argmax(1).numpy()
    precision, recall, f1, _ = precision_recall_fscore_support(digits.y_val, predicted, average=None)
    np.testing.assert_allclose(metrics.class_precision, precision)
    np.testing.assert_allclose(metrics.class_recall, recall)
    np.testing.assert_allclose(metrics.class_f1, f1)
    scores = metrics.scores()
    assert scores["f1_3"] == pytest.approx(f1[3]) and scores["f1"] == pytest.approx(np.mean(f1))


@pytest.mark.slow
def test_ad_autoencoder_trains_on_reconstruction_and_detects_anomalies_made_here():
    """Normal: digits as 640 features. Anomalies made here: a normal sample with a block of 64
    features shifted by +0.8 (not the kind the zoo task's validation split uses)."""
    normal = data.digits((1, 640))
    held_out = normal.x_test
    anomalies = held_out.copy()
    start = np.random.default_rng(5).integers(0, 640 - 64, len(held_out))
    for row, s in zip(anomalies, start):
        row[s:s + 64] += 0.8
    x_test = np.concatenate([held_out, anomalies])
    y_test = np.repeat(np.array([0, 1]), len(held_out))
    ds = data.anomaly_task(normal)
    task = zoo_task("ad_autoencoder", data.Dataset(ds.x_train, ds.y_train, ds.x_val, ds.y_val, x_test, y_test))
    assert task.loss == "reconstruction" and task.metric_name == "roc_auc"
    task.tune(task.model, Recipe(epochs=10))
    average = np.mean((held_out - ds.x_train.mean(axis=0)) ** 2)  # what a model learning nothing gets
    assert reconstruction_errors(task.model, held_out).mean() < 0.8 * average
    auc = task.test_score(task.model)
    assert auc == pytest.approx(roc_auc_score(y_test, reconstruction_errors(task.model, x_test)))
    assert auc > 0.95 and task.score(task.model) > 0.9


def test_readme_task_file_loads_and_its_commands_parse(tmp_path, monkeypatch):
    """The README's "Your own model" task file, with data and weights made here, is a valid task;
    its command lines are valid for the command-line parser."""
    import shlex
    from pathlib import Path

    from edgeprune.cli import build_parser

    section = (Path(__file__).resolve().parents[1] / "README.md").read_text().split("\n## Your own model\n")[1]
    source = section.split("```python\n")[1].split("```")[0]
    commands = [shlex.split(line) for line in section.split("```sh\n")[1].split("```")[0].splitlines()]
    (tmp_path / "data").mkdir()
    rng = np.random.default_rng(0)
    for name in ("train", "val"):
        np.savez(tmp_path / "data" / f"{name}.npz", x=rng.normal(size=(40, 1, 49, 10)).astype(np.float32),
                 y=np.arange(40) % 4)
    (tmp_path / "my_task.py").write_text(source)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(source.split("\ntask = Task(")[0], "my_task.py", "exec"), namespace)
    torch.save(namespace["Net"]().state_dict(), tmp_path / "net.pt")
    task = load_task("my_task.py:task")
    assert task.metric_name == "recall" and 0 <= task.score(task.model) <= 1
    assert [argv[1] for argv in commands] == ["prune", "quantize", "compile", "search"]
    for argv in commands:
        build_parser().parse_args(argv[1:])
