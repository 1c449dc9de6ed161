"""The README's command lines work as written, relative paths included, from a project root
(issue 17, acceptance). Three changes keep the test short: the small digits CNN instead of ResNet-8,
no training before quantizing (`--train-epochs 0`), and one process for all but the first
command; prune and search are left to their tests."""
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from edgeprune.cli import main

pytestmark = [pytest.mark.qemu, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]
SKIPPED = {"prune", "search"}  # minutes of training; tests/test_prune_*.py and test_search*.py cover them


def readme_commands() -> list[list[str]]:
    """The `.venv/bin/edgeprune ...` lines of the README's "Use" section, comments removed."""
    use = (ROOT / "README.md").read_text().split("\n## Use\n", 1)[1].split("\n## ", 1)[0]
    lines = [line.split("  #", 1)[0] for line in use.splitlines() if line.startswith(".venv/bin/edgeprune ")]
    return [shlex.split(line) for line in lines]


def _as_tested(argv: list[str]) -> list[str]:
    argv = ["digits_cnn" if arg == "ic_resnet8" else arg for arg in argv]
    return argv + ["--train-epochs", "0"] if argv[1] == "quantize" else argv


def test_readme_commands_run_as_written_from_a_project_root(tmp_path, monkeypatch, capsys):
    """The first command runs through the `.venv/bin/edgeprune` script; the others through the same
    `main` in this process, which spares each the seconds a new process takes to import TVM and torch."""
    commands = [_as_tested(argv) for argv in readme_commands() if argv[1] not in SKIPPED]
    assert [argv[1] for argv in commands] == ["targets", "zoo", "compile", "compile", "run", "run", "compile",
                                              "quantize", "compile", "profile", "report"]
    root = tmp_path / "project"  # with shared/ beside it, as the README's ../shared paths expect
    root.mkdir()
    (tmp_path / "shared").symlink_to(ROOT.parent / "shared", target_is_directory=True)
    (root / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    store = str(tmp_path / "results.sqlite")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EDGEPRUNE_STORE": store}
    done = subprocess.run(commands[0], cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "mps2-an386" in done.stdout, f"{shlex.join(commands[0])}\n{done.stderr}"
    monkeypatch.chdir(root)
    monkeypatch.setenv("EDGEPRUNE_STORE", store)
    printed = {}
    for argv in commands[1:]:
        code = main(argv[1:])
        out, err = capsys.readouterr()
        assert code == 0, f"{shlex.join(argv)}\n{out}\n{err}"
        printed[" ".join(argv[1:3])] = out
    assert "(ok, tolerance" in printed["run build/ic"]
    assert "agreement with TFLM: 12 of 12 output elements exactly equal" in printed["run build/kws"]
    assert "outputs vs onnxruntime: match" in printed["profile build/digits8"]
    assert (root / "build/ic/firmware.elf").is_file() and (root / "build/digits8/profile.elf").is_file()
    assert (root / "build/report/report.html").is_file() and (root / "build/report/report-latency.png").is_file()
