"""The sparsity search on the digits CNN, measured on QEMU (real compiler, real emulator)."""
from __future__ import annotations

import itertools
import json
import re

import pytest
import torch

import edgeprune
from edgeprune import cli
from edgeprune.prune import serialize
from edgeprune.search import runner
from edgeprune.profile.store import ResultsStore
from edgeprune.search.results import dominates

pytestmark = [pytest.mark.qemu, pytest.mark.slow, pytest.mark.xdist_group("search")]  # one worker runs the search
FAST = {"train_epochs": 5, "finetune_epochs": 1, "seed": 0, "progress": False}


@pytest.fixture(scope="session")  # xdist may run another module in between: keep it alive
def searched(tmp_path_factory):
    out = tmp_path_factory.mktemp("search")
    return out, edgeprune.search("digits_cnn", out=out, trials=4, uniform=(0.0, 0.5, 0.7),
                                 store=out / "results.sqlite", **FAST)


def test_search_measures_and_reports_a_non_dominated_front(searched):
    out, result = searched
    assert result.finished == 4 and len(result.candidates) == 4
    assert [c.uniform for c in result.uniform] == [0.0, 0.5, 0.7]
    unpruned, most = result.uniform[0], result.uniform[-1]
    assert unpruned.channels == {"0.0": 16, "1.0": 32, "2.0": 32, "3.2": 10}
    assert most.instructions < unpruned.instructions and most.flash_bytes < unpruned.flash_bytes
    assert result.front and not any(dominates(a, b)
                                    for a, b in itertools.permutations(result.front, 2))
    assert all(any(dominates(f, c) or (f.accuracy, f.instructions) == (c.accuracy, c.instructions)
                   for f in result.front) for c in result.candidates)
    assert result.chosen == max(result.candidates, key=lambda c: (c.accuracy, -c.instructions))
    saved = json.loads((out / "search.json").read_text())
    assert saved["pareto"] == [c.number for c in result.front]
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    report = (out / "report.md").read_text()
    assert "Pareto front" in report
    # The digits' validation split: 360 samples, one of them 0.28 point.
    assert result.validation_samples == saved["validation_samples"] == 360
    assert "360 samples, one sample = 0.28%" in report


def test_chosen_candidate_is_exported(searched):
    out, result = searched
    chosen = out / "chosen"
    model = serialize.load(chosen / "model.pt").model
    assert model[0][0].out_channels == result.chosen.channels["0.0"]
    assert (chosen / "model.int8.onnx").is_file() and (chosen / "firmware/firmware.elf").is_file()
    assert "the same as the trial's" in (chosen / "README.txt").read_text()


def test_architecture_cache_prevents_a_second_measurement(searched, monkeypatch):
    out, first = searched
    calls, threads, before = [], [], torch.get_num_threads()
    monkeypatch.setattr(runner, "measure", lambda *a: calls.append(a) or pytest.fail("measured"))
    build = runner.build
    monkeypatch.setattr(runner, "build", lambda *a: threads.append(torch.get_num_threads()) or build(*a))
    again = edgeprune.search("digits_cnn", out=out, trials=3, uniform=(0.0, 0.5, 0.7),
                             study="same-architectures", export=False, threads=3,
                             store=out / "results.sqlite", **FAST)
    assert calls == [] and again.cache_hits == 3
    assert threads == [3, 3, 3] and torch.get_num_threads() == before  # set, then restored
    by_ratio = {c.uniform: c for c in first.uniform}
    assert all(c.instructions == by_ratio[c.uniform].instructions for c in again.candidates)
    with ResultsStore(out / "results.sqlite") as store:
        records = store.latest(1000)
    assert len(records) == len({r.architecture for r in records}) == len({json.dumps(c.channels) for c in first.candidates})
    assert all(r.unit == "instructions" and r.method == "QEMU, -icount shift=0" and len(r.runs) == 1 for r in records)


def test_budgets_nothing_meets_give_a_clear_message(searched, capsys):
    """(A RAM budget would compile each candidate again in patches: test_patches covers that.)"""
    out, _ = searched
    code = cli.main(["search", "digits_cnn", "-o", str(out), "--trials", "2", "--study", "tight",
                     "--uniform", "0.0", "0.7", "--max-latency", "1000", "--max-flash", "64",
                     "--store", str(out / "results.sqlite"),  # the fixture measured both architectures
                     "--train-epochs", "5", "--finetune-epochs", "1", "--quiet"])
    printed = capsys.readouterr().out
    assert code == 1
    assert "no candidate meets the budgets (latency <= 1,000 instructions, flash <= 64 B)" in printed
    assert re.search(r"the closest reach [\d,]+ instructions, flash [\d,]+ B", printed)
    assert "no candidate meets the budgets" in (out / "report.md").read_text()


def test_an_existing_study_needs_resume(searched, capsys):
    out, _ = searched
    code = cli.main(["search", "digits_cnn", "-o", str(out), "--trials", "1", "--quiet",
                     "--train-epochs", "5"])
    assert code == 2
    assert "pass --resume to continue it" in capsys.readouterr().err


def test_cached_measurements_are_keyed_by_the_compiler(monkeypatch, tmp_path):
    """A record of the same architecture, options and device made by another compiler (another
    TVM here) is not reused."""
    from edgeprune.compile import fingerprint
    from edgeprune.compile.elfsize import MemoryBreakdown
    from edgeprune.profile.store import Record
    from edgeprune.search.measure import compile_options, stored_measurement

    store, device = tmp_path / "results.sqlite", "qemu:mps2-an386"
    memory = MemoryBreakdown.from_dict({"flash": {"weights": 1}, "ram": {"arena": 1}})
    with ResultsStore(store) as results:
        results.add(Record("m", compile_options(), "mps2-an386", device, "instructions", [100.0],
                           memory=memory, architecture="arch", compiler=fingerprint.compiler_fingerprint()))
    assert stored_measurement(store, "arch", device).latency == 100.0
    assert stored_measurement(store, "arch", "qemu:mps3-an547") is None
    fingerprint.compiler_fingerprint.cache_clear()
    monkeypatch.setattr(fingerprint.tvm, "__version__", "0.0-other")
    assert stored_measurement(store, "arch", device) is None
    fingerprint.compiler_fingerprint.cache_clear()


def test_editing_a_kernel_source_changes_the_cache_key(monkeypatch, tmp_path):
    """A copy of the compiler whose DSP GEMM differs by one character gets another fingerprint;
    the sources outside compile/ that shape the measured graph are covered too."""
    import shutil

    from edgeprune.compile import fingerprint

    assert {"edgeprune/quantize/prepare.py", "edgeprune/models/export.py"} <= dict(fingerprint._sources()).keys()

    copy = tmp_path / "compile"
    shutil.copytree(fingerprint._COMPILER_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(fingerprint, "_COMPILER_DIR", copy)
    fingerprint.compiler_fingerprint.cache_clear()
    before = fingerprint.compiler_fingerprint()
    gemm = copy / "dsp" / "gemm.py"
    gemm.write_text(gemm.read_text().replace("UNROLL = 4", "UNROLL = 2"))
    fingerprint.compiler_fingerprint.cache_clear()
    assert fingerprint.compiler_fingerprint() != before
    fingerprint.compiler_fingerprint.cache_clear()
