"""Relative compiled-model folders work everywhere (issue 17, item 1): QEMU starts in a scratch
folder, so a path given as written would not be found there."""
from pathlib import Path

import pytest

import edgeprune
from edgeprune.cli import main

pytestmark = pytest.mark.qemu


def test_relative_output_folder_compiles_runs_and_profiles(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    model = edgeprune.compile("digits_cnn", target="mps2-an386", out="build/x")
    assert model.path == tmp_path / "build" / "x" and model.path.is_absolute()

    report = edgeprune.run(model)
    assert report.measurement.last > 0 and report.relative_error < 1e-4

    assert main(["run", "build/x"]) == 0
    assert "agreement with onnxruntime" in capsys.readouterr().out
    assert main(["profile", "build/x", "--device", "qemu:mps2-an386", "--runs", "2", "--no-store"]) == 0
    assert "outputs vs onnxruntime: match" in capsys.readouterr().out
    assert edgeprune.compile.CompiledModel.load(Path("build/x")).path == model.path
