"""Issue 21's acceptance: a model that is not in the zoo, data made here (not digits) and a custom
metric, described in a task file, go through `edgeprune prune`, `quantize`, `compile` and a
4-trial `search` on QEMU; every step calls the task's finetune and evaluate (logged by the task
file and checked here), and the exported candidate runs on QEMU as its int8 ONNX does."""
from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
import torch

import edgeprune
from edgeprune import cli
from edgeprune.compile.api import CompiledModel
from edgeprune.reference import reference_outputs

pytestmark = [pytest.mark.qemu, pytest.mark.slow, pytest.mark.xdist_group("search")]

TASK_FILE = '''
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import f1_score
from torch import nn

from edgeprune.task import Task, load_weights

HERE = Path(__file__).parent


class Net(nn.Module):
    """Not a zoo model: two convs on 2x6x6 inputs, three classes."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(2, 8, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(8, 12, 3, stride=2, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(12, 3))

    def forward(self, x):
        return self.head(self.features(x))


def log(line):
    with open(HERE / "calls.log", "a") as f:
        f.write(line + "\\n")


def finetune(model, epochs):
    log(f"finetune {epochs} {type(model).__name__}")
    with np.load(HERE / "train.npz") as d:
        x, y = torch.from_numpy(d["x"]), torch.from_numpy(d["y"])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(epochs):
        for i in range(0, len(x), 32):
            loss = nn.functional.cross_entropy(model(x[i:i + 32]), y[i:i + 32])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def evaluate(model):
    log(f"evaluate {type(model).__name__}")
    with np.load(HERE / "val.npz") as d:
        x, y = d["x"], d["y"]
    with torch.no_grad():
        predicted = model(torch.from_numpy(x)).argmax(1).numpy()
    return {"f1": f1_score(y, predicted, average="macro"), "accuracy": float(np.mean(predicted == y))}


task = Task(model=load_weights(Net, HERE / "weights.pt"), input_shape=(1, 2, 6, 6),
            train=str(HERE / "train.npz"), validation=str(HERE / "val.npz"),
            finetune=finetune, evaluate=evaluate, metric="f1", name="blobs")
'''


def blobs(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three classes of 2x6x6 samples: a bright 3x3 patch in one of three places, plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, count)
    x = rng.normal(0, 0.8, (count, 2, 6, 6)).astype(np.float32)
    for i, c in enumerate(y):
        x[i, c % 2, 2 * c:2 * c + 3, 1:4] += 1.0
    return x, y.astype(np.int64)


def calls(folder) -> list[str]:
    """The task's calls since the last look (the log is emptied)."""
    log = folder / "calls.log"
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return lines


@pytest.fixture(scope="module")
def task_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("own")
    for name, (count, seed) in {"train": (384, 1), "val": (192, 2)}.items():
        x, y = blobs(count, seed)
        np.savez(folder / f"{name}.npz", x=x, y=y)
    (folder / "task.py").write_text(TASK_FILE)
    # The user's trained model, saved as a state dict: the task file loads it with its class.
    namespace: dict = {"__file__": str(folder / "task.py")}
    exec(compile(TASK_FILE.split("\ntask = Task(")[0], "task.py", "exec"), namespace)
    torch.manual_seed(0)
    net = namespace["Net"]()
    namespace["finetune"](net, 15)
    torch.save(net.state_dict(), folder / "weights.pt")
    calls(folder)
    return folder


def test_prune_quantize_compile_use_the_tasks_finetune_and_metric(task_folder, tmp_path, capsys):
    ref = f"{task_folder}/task.py:task"
    report = tmp_path / "prune.json"
    assert cli.main(["prune", ref, "--ratio", "0.5", "--finetune-epochs", "2", "--out", str(tmp_path / "p.pt"),
                     "--onnx", str(tmp_path / "p.onnx"), "--report", str(report), "--max-drop", "50",
                     "--quiet"]) == 0
    assert calls(task_folder) == ["evaluate Net", "evaluate Net", "finetune 2 Net", "evaluate Net",
                                  "evaluate Net"]  # before; baseline; the round; its score; after
    written = json.loads(report.read_text())
    assert written["metric"] == "f1" and written["scored_on"] == "task.evaluate"
    assert written["before"]["f1"] > 0.85 and set(written["after"]) == {"f1", "accuracy"}
    before, after = written["before"]["f1"], written["after"]["f1"]
    assert f"f1 (task.evaluate) {before:.4g} -> {after:.4g}" in capsys.readouterr().out

    int8 = tmp_path / "m.int8.onnx"
    assert cli.main(["quantize", ref, "-o", str(int8)]) == 0
    assert calls(task_folder) == ["evaluate OnnxModule", "evaluate OnnxModule"]  # float, int8
    quantized = json.loads(int8.with_suffix(".json").read_text())
    assert quantized["metric"] == "f1" and quantized["evaluation"] == "task.evaluate"
    assert quantized["calibration_samples"] == 300 and quantized["int8_accuracy"] > 0.85
    assert "f1 by task.evaluate: float" in capsys.readouterr().out

    assert cli.main(["compile", str(int8), "-o", str(tmp_path / "fw")]) == 0
    assert (tmp_path / "fw" / "firmware.elf").is_file()


def test_search_on_qemu_uses_the_task_and_exports_a_matching_candidate(task_folder, tmp_path, capsys):
    out = tmp_path / "search"
    code = cli.main(["search", f"{task_folder}/task.py:task", "--device", "qemu:mps2-an386",
                     "--trials", "4", "--uniform", "0.0", "0.5", "--finetune-epochs", "2", "--seed", "0",
                     "--max-ratio", "0.5", "--step", "0.25", "-o", str(out), "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    made = calls(task_folder)
    # One score of the base model, then per trial and for the export: finetune, then the int8 score.
    assert made == ["evaluate Net"] + ["finetune 2 Net", "evaluate OnnxModule"] * 5
    result = json.loads((out / "search.json").read_text())
    assert result["metric"] == "f1" and result["finished"] == 4 and not result["failed"]
    assert "val f1" in printed and result["chosen"]["number"] in result["pareto"]
    report = (out / "report.md").read_text()
    assert "f1 on the validation split (the task's evaluate" in report
    assert "validation noise: unknown (f1 comes from the task's evaluate" in report

    # The exported firmware on QEMU against its int8 ONNX (QDQ, float in and out) in onnxruntime:
    # the firmware's int8 input is the sample quantized with the model's input scale.
    chosen = out / "chosen"
    compiled = CompiledModel.load(chosen / "firmware")
    (given,), (produced,) = compiled.manifest["inputs"], compiled.manifest["outputs"]
    for x in np.load(task_folder / "val.npz")["x"][:2]:
        q = np.clip(np.round(x[None] / given["scale"]) + given["zero_point"], -128, 127).astype(np.int8)
        ran = edgeprune.run(compiled, [q])
        assert ran.relative_error < 0.05  # vs the compiled graph on the same int8 input
        device = (ran.measurement.outputs[0].astype(np.float32) - produced["zero_point"]) * produced["scale"]
        expected = reference_outputs(chosen / "model.int8.onnx", [x[None]])[0]
        assert np.abs(device - expected).max() <= 2 * produced["scale"] + 1e-6
        assert np.argmax(device) == np.argmax(expected)


def test_a_failing_finetune_fails_one_trial_with_its_traceback(task_folder, tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text(textwrap.dedent(f'''
        import sys
        sys.path.insert(0, {str(task_folder)!r})
        from task import task, finetune

        count = [0]

        def flaky(model, epochs):
            count[0] += 1
            if count[0] == 2:
                raise RuntimeError("out of memory on trial two")
            finetune(model, epochs)

        task.finetune = flaky
    '''))
    result = edgeprune.search(f"{broken}:task", trials=3, uniform=(0.0, 0.5), finetune_epochs=1, seed=0,
                              max_ratio=0.5, step=0.25, out=tmp_path / "s", export=False, progress=False)
    assert result.finished == 3 and len(result.candidates) == 2
    [(number, message)] = result.failed
    assert message == "task.finetune raised RuntimeError: out of memory on trial two"
    assert 'raise RuntimeError("out of memory on trial two")' in result.tracebacks[number]
    report = (tmp_path / "s" / "report.md").read_text()
    assert f"- trial {number}: task.finetune raised RuntimeError" in report and "Traceback" in report
