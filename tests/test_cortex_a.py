"""Cortex-A boards: the zoo models as static Linux executables under qemu-user agree with
onnxruntime on the host (fp32) or equal the host build of the same integer graph bit for bit
(int8); the plugin's instruction counts repeat exactly; the model builds as a library that links
into another program; bad input gives clear errors. Real QEMU, real cross compilers, the real
plugin (scripts/bootstrap-qemu-plugin builds it)."""
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgeprune.cli import main as cli_main
from edgeprune.errors import EdgepruneError, ToolchainMissingError, UnknownTargetError
from edgeprune.models import zoo
from edgeprune.profile.linux_app import IllegalInstructionError
from edgeprune.profile.qemu_user import PLUGIN_ENV
from edgeprune.profile.api import profile
from edgeprune.profile.inputs import random_inputs
from edgeprune.profile.run import run
from edgeprune.profile.store import ResultsStore
from edgeprune.targets import load_target

pytestmark = pytest.mark.qemu
BOARDS = ["cortex-a53", "cortex-a7"]  # aarch64 and armv7 hard-float


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("name", zoo.model_names())
def test_zoo_model_matches_onnxruntime(compiled, board, name):
    report = run(compiled(name, board), runs=2)
    assert report.relative_error < 1e-4
    assert report.measurement.outputs[0].shape == report.reference[0].shape
    # The instruction clock is exact: two inferences in one process count the same.
    assert report.measurement.run_ticks[0] == report.measurement.run_ticks[1] > 0
    assert f"-cpu {load_target(board).qemu_cpu}," in report.method  # the board's own core


@pytest.mark.slow
@pytest.mark.xdist_group("cortex-a-int8")  # both boards on one worker: one host build per model
@pytest.mark.parametrize(("name", "board"), [(name, "cortex-a53") for name in zoo.model_names()]
                         + [(name, "cortex-a7") for name in ("ad_autoencoder", "digits_cnn", "kws_dscnn")])
def test_int8_zoo_model_equals_the_host_build_bit_for_bit(quantized, compiled, host_reference, board, name):
    model = compiled(quantized(name), board)
    x = random_inputs(model.manifest, seed=3)
    device = run(model, x, runs=2).measurement
    assert [o.dtype for o in device.outputs] == [np.dtype(np.int8)] * len(device.outputs)
    for got, expected in zip(device.outputs, host_reference(model, x), strict=True):
        assert np.array_equal(got, expected)
    # Exact counts: two inferences in one process count the same (two processes: below).
    assert device.run_ticks[0] == device.run_ticks[1] > 0


@pytest.mark.parametrize("board", BOARDS)
def test_two_processes_count_identical_instructions(compiled, board):
    first, second = (run(compiled("kws_dscnn", board)).measurement for _ in range(2))
    assert first.run_ticks == second.run_ticks
    assert first.layer_ticks == second.layer_ticks
    assert first.last == second.last > 100_000


@pytest.mark.parametrize("board", BOARDS)
def test_per_layer_instructions_add_up_to_the_total(compiled, board):
    report = run(compiled("ic_resnet8", board))
    device = report.measurement
    assert len(device.layer_ticks) == len(report.compiled.manifest["steps"])
    assert all(count > 0 for count in device.layers)
    # The driver's own bookkeeping between layers is the only difference.
    assert sum(device.layers) == pytest.approx(device.last, rel=1e-3)
    assert 0 < device.timer_cost < 200


def test_the_executable_is_static_for_the_core(compiled):
    from elftools.elf.elffile import ELFFile

    for board, machine in (("cortex-a53", "EM_AARCH64"), ("cortex-a7", "EM_ARM")):
        with open(compiled("digits_cnn", board).elf, "rb") as f:
            elf = ELFFile(f)
            assert elf["e_machine"] == machine
            assert not any(s["p_type"] == "PT_INTERP" for s in elf.iter_segments())  # no dynamic loader


APP = r"""
#include <stdio.h>
#include "edgeprune_model.h"
static edgeprune_input_0_t input[EDGEPRUNE_INPUT_0_BYTES / sizeof(edgeprune_input_0_t)];
static edgeprune_output_0_t output[EDGEPRUNE_OUTPUT_0_BYTES / sizeof(edgeprune_output_0_t)];
int main(void) {
  FILE *f = fopen("x.bin", "rb");
  if (!f || fread(input, 1, sizeof input, f) != sizeof input) return 2;
  if (edgeprune_run(input, output) != 0) return 3;
  f = fopen("y.bin", "wb");
  return f && fwrite(output, 1, sizeof output, f) == sizeof output && fclose(f) == 0 ? 0 : 4;
}
"""


@pytest.mark.parametrize("board", BOARDS)
def test_the_model_links_into_an_application_as_a_library(compiled, board, tmp_path):
    """`make lib` gives libedgeprune_model.a; an application of our own links it with the header
    and computes what the `edgeprune run` executable computes (here with the wall clock)."""
    model, target = compiled("digits_cnn", board), load_target(board)
    subprocess.run(["make", "-s", "-C", str(model.path), "lib"], check=True, capture_output=True)
    library = model.path / "libedgeprune_model.a"
    (tmp_path / "app.c").write_text(APP)
    subprocess.run([target.gcc, *target.cflags, "-static", "-O2", f"-I{model.path / 'src'}", "-o", "app",
                    "app.c", str(library), "-lm"], cwd=tmp_path, check=True, capture_output=True)
    x = random_inputs(model.manifest, seed=3)[0]
    (tmp_path / "x.bin").write_bytes(x.tobytes())
    subprocess.run([target.qemu_user, "-cpu", target.qemu_cpu, "./app"], cwd=tmp_path, check=True, timeout=60)
    y = np.frombuffer((tmp_path / "y.bin").read_bytes(), dtype=np.float32)
    assert np.array_equal(y, run(model, [x]).measurement.outputs[0].reshape(-1))


def test_profile_on_qemu_user_stores_the_instruction_counts(compiled, tmp_path):
    model = compiled("kws_dscnn", "cortex-a53")
    report = profile(model, "qemu-user:cortex-a53", runs=2, store=tmp_path / "results.db")
    counted = run(model, report.inputs).measurement
    record = report.record
    assert record.outputs_match and record.unit == "instructions"
    assert record.runs == [counted.last] * 2
    assert [value for _, value in record.layers] == counted.layers
    with ResultsStore(tmp_path / "results.db") as store:
        assert store.get(record.id).device == "qemu-user:cortex-a53"
    a72 = profile(model, "qemu-user:cortex-a53?cpu=cortex-a72", store=False)
    assert "-cpu cortex-a72" in a72.method and a72.record.outputs_match


def test_cli_run_prints_instructions_per_layer(compiled, capsys):
    model = compiled("digits_cnn", "cortex-a7")
    assert cli_main(["run", str(model.path)]) == 0
    out = capsys.readouterr().out
    assert "digits_cnn on cortex-a7" in out and "total per inference" in out and "(ok" in out


# Bad input


def test_unknown_board_lists_the_cortex_a_boards():
    with pytest.raises(UnknownTargetError, match="known boards: .*cortex-a53.*cortex-a7"):
        load_target("cortex-a99")


def test_unknown_core_lists_the_emulators_cores(compiled):
    with pytest.raises(UnknownTargetError, match=r"unknown core 'cortex-a99' for qemu-aarch64; its cores: .*cortex-a72"):
        run(compiled("digits_cnn", "cortex-a53"), cpu="cortex-a99")


def test_a_core_without_the_built_features_is_a_clear_sigill(compiled):
    """An armv7-a/NEON build on an ARMv6 core (the Raspberry Pi 1 and Zero's ARM1176)."""
    with pytest.raises(IllegalInstructionError, match=r"SIGILL \(illegal instruction\) on arm1176.*cortex-a7, \+neon, \+vfp4"):
        run(compiled("digits_cnn", "cortex-a7"), cpu="arm1176")


def test_the_same_build_runs_on_a_compatible_core(compiled):
    """The Cortex-A7 executable runs unchanged on an A15 (same ISA and features) and computes the same."""
    model = compiled("digits_cnn", "cortex-a7")
    a7, a15 = run(model), run(model, cpu="cortex-a15")
    assert a15.relative_error < 1e-4 and "-cpu cortex-a15," in a15.method
    assert np.array_equal(a7.measurement.outputs[0], a15.measurement.outputs[0])


def test_missing_qemu_user_names_its_package(compiled, monkeypatch, tmp_path):
    model = compiled("digits_cnn", "cortex-a53")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolchainMissingError, match="qemu-aarch64 is not installed; install the Debian package qemu-user"):
        run(model)


def test_missing_plugin_says_how_to_build_it(compiled, monkeypatch, tmp_path):
    monkeypatch.setenv(PLUGIN_ENV, str(tmp_path / "libep_insn.so"))
    with pytest.raises(ToolchainMissingError, match="scripts/bootstrap-qemu-plugin"):
        run(compiled("digits_cnn", "cortex-a53"))


def test_a_bare_metal_board_on_the_qemu_user_device_is_refused(compiled):
    with pytest.raises(EdgepruneError, match=r"runs Linux \(Cortex-A\) boards; mps2-an386 is bare metal"):
        profile(compiled("digits_cnn", "mps2-an386"), "qemu-user:mps2-an386", store=False)


def test_a_bare_metal_board_cannot_switch_cores(compiled):
    with pytest.raises(Exception, match="qemu-user boards only"):
        run(compiled("digits_cnn", "mps2-an386"), cpu="cortex-m7")
