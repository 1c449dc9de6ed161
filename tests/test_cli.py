"""The command line: --help everywhere, tables on success, a message and a non-zero code on failure."""
import subprocess
import sys

import pytest

from edgeprune.cli import build_parser, main


def _subcommands():
    parser = build_parser()
    return sorted(parser._subparsers._group_actions[0].choices)


@pytest.mark.parametrize("command", _subcommands())
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert "usage: edgeprune " + command in capsys.readouterr().out


def test_targets_lists_the_boards(capsys):
    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    assert "mps2-an386" in out and "cortex-m55" in out
    rows = {line.split()[0]: line.split()[:12] for line in out.splitlines()[1:]}
    # board, core, fpu, flash, RAM, clock, timer, UART driver, QEMU machine (or "no" for a real board)
    assert rows["microbit"][:11] == ["microbit", "cortex-m0", "none", "256", "KiB", "16", "KiB", "16", "MHz",
                                     "nrf", "nrf"]
    assert rows["nucleo-l4r5zi"][1:] == ["cortex-m4", "fpv4-sp-d16", "2", "MiB", "640", "KiB", "120", "MHz",
                                        "dwt", "stm32-lpuart", "no"]
    assert " netduinoplus2 " in [line for line in out.splitlines() if line.startswith("netduinoplus2")][0]


def test_unknown_board_exits_non_zero_with_the_list(capsys, tmp_path):
    assert main(["compile", "digits_cnn", "--target", "nope", "-o", str(tmp_path / "o")]) == 2
    assert "unknown board 'nope'" in capsys.readouterr().err


def test_run_on_a_folder_that_is_not_compiled(capsys, tmp_path):
    assert main(["run", str(tmp_path)]) == 2
    assert "not a compiled-model folder" in capsys.readouterr().err


@pytest.mark.qemu
@pytest.mark.slow  # two fresh interpreters import torch and TVM
def test_compile_then_run_from_the_shell(tmp_path):
    out = tmp_path / "digits"
    edgeprune = [sys.executable, "-m", "edgeprune.cli"]
    done = subprocess.run(edgeprune + ["compile", "digits_cnn", "-o", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "liveness bound" in done.stdout and (out / "manifest.json").is_file()
    done = subprocess.run(edgeprune + ["run", str(out), "--runs", "2"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "total per inference" in done.stdout and "(ok," in done.stdout


HEAVY_MODULES = ("torch", "tvm", "tvm_ffi", "onnxruntime", "optuna", "torch_pruning")


def test_building_the_parser_imports_no_heavy_library():
    """`edgeprune --help` and `edgeprune targets` must not wait for torch or TVM (issue 17 item 3)."""
    probe = ("import sys; from edgeprune.cli import build_parser, main; build_parser(); main(['targets']); "
             f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY_MODULES!r}))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"


@pytest.mark.parametrize("argv, listed", [
    (["prune", "digits_cnn", "--out", "x.pt", "--criterion", "nope"], "'bn_scale', 'fpgm', 'l1'"),
    (["quantize", "digits_cnn", "--calib", "digits", "-o", "x.onnx", "--method", "nope"], "'entropy', 'minmax'"),
    (["search", "digits_cnn", "-o", "x", "--sampler", "nope"], "'nsga2', 'tpe'"),
])
def test_choices_loaded_late_still_refuse_a_bad_value(argv, listed, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert f"invalid choice: 'nope' (choose from {listed}" in capsys.readouterr().err


def test_choices_loaded_late_are_listed_in_the_help(capsys):
    with pytest.raises(SystemExit):
        main(["prune", "--help"])
    assert "bn_scale, fpgm, l1, l2, lamp, magnitude, random, taylor; channels default to l1" in " ".join(capsys.readouterr().out.split())
