"""The search's devices are the device URLs `edgeprune profile` takes (its board named by the URL),
opened through the same `open_device`; a candidate measured by the search counts what
`edgeprune profile` counts on the same device, in the device's unit, into the same results store;
a serial or socket board is flashed per candidate by the user's command."""
import os
import shlex
import signal
import socket
from pathlib import Path

import pytest

import edgeprune
from edgeprune import cli
from edgeprune.compile.fingerprint import compiler_fingerprint
from edgeprune.profile.api import profile
from edgeprune.profile.qemu import QemuDevice, qemu_command
from edgeprune.profile.store import ResultsStore
from edgeprune.search.errors import SearchError
from edgeprune.search.measure import board_of, candidate_architecture, compile_options, device_unit, measure
from edgeprune.targets import load_target


@pytest.mark.parametrize("device, board", [
    ("qemu:mps2-an386", "mps2-an386"),
    ("qemu-user:cortex-a53", "cortex-a53"),
    ("qemu-user:cortex-a53?cpu=cortex-a72", "cortex-a53"),
    ("serial:///dev/ttyACM0?board=nucleo-l4r5zi", "nucleo-l4r5zi"),
    ("socket://127.0.0.1:5555?board=mps2-an386", "mps2-an386"),
    ("ssh://pi@raspberry?board=cortex-a53", "cortex-a53"),
])
def test_board_of_takes_profile_devices(device, board):
    assert board_of(device) == board


@pytest.mark.parametrize("device, message", [
    ("qemu:cortex-a53", r"cortex-a53 is a Linux \(Cortex-A\) board; use qemu-user:cortex-a53"),
    ("qemu-user:mps2-an386", r"mps2-an386 is a bare-metal board; use qemu:mps2-an386"),
    ("serial:///dev/ttyACM0", r"names no board; add \?board=NAME"),
    ("ssh://pi@raspberry", r"names no board"),
])
def test_board_of_refuses_what_it_cannot_measure(device, message):
    with pytest.raises(SearchError, match=message):
        board_of(device)


@pytest.mark.qemu
@pytest.mark.slow  # compiles for the A53
def test_search_measures_a_cortex_a_candidate_as_profile_does(quantized, tmp_path):
    device = "qemu-user:cortex-a53?cpu=cortex-a72"
    measured = measure(quantized("digits_cnn"), device, tmp_path / "firmware")
    profiled = profile(tmp_path / "firmware", device, runs=1, store=False)
    assert profiled.measurement.unit == "instructions"
    assert measured.latency == profiled.measurement.run_ticks[-1] * profiled.measurement.units_per_tick
    assert measured.layer_latency == profiled.measurement.layers
    assert (measured.unit, measured.method) == ("instructions", profiled.method)
    assert measured.relative_error < 0.05  # int8 outputs against onnxruntime, relative to their scale


@pytest.mark.parametrize("device, unit", [
    ("qemu:mps2-an386", "instructions"),
    ("qemu-user:cortex-a53", "instructions"),
    ("serial:///dev/ttyACM0?board=nucleo-l4r5zi", "cycles"),
    ("ssh://pi@raspberry?board=cortex-a53", "ns"),
])
def test_latency_is_labelled_by_the_device(device, unit):
    assert device_unit(device)[0] == unit


@pytest.mark.qemu
@pytest.mark.slow  # a two-trial search
def test_profile_and_search_share_measurements_in_one_store(compiled, quantized, tmp_path, monkeypatch, capsys):
    """A model `edgeprune profile` measured is not measured again by a search whose candidate has
    its architecture (same compiler, options, device); the search's records are profile records:
    `edgeprune report` compares them, and profiling the search's chosen firmware gives a record
    under the same key with the same figures."""
    store, device = tmp_path / "results.sqlite", "qemu:mps2-an386"
    profiled = profile(compiled(quantized("digits_cnn")), device, runs=1, store=store).record
    assert profiled.architecture == candidate_architecture(quantized("digits_cnn"))
    assert (profiled.compiler, profiled.options) == (compiler_fingerprint(), compile_options())

    runs = []
    real_run = QemuDevice.run
    monkeypatch.setattr(QemuDevice, "run", lambda self, *a, **k: runs.append(a) or real_run(self, *a, **k))
    result = edgeprune.search("digits_cnn", device=device, out=tmp_path / "search", trials=2,
                              uniform=(0.0, 0.5), train_epochs=1, finetune_epochs=1, seed=0,
                              progress=False, store=store)
    unpruned, pruned = result.uniform
    assert (unpruned.cached, pruned.cached, len(runs)) == (True, False, 1)  # only the pruned one ran
    assert unpruned.instructions == profiled.median

    with ResultsStore(store) as results:
        searched = results.latest(1)[0]
    assert searched.id == profiled.id + 1 and searched.median == pruned.instructions
    assert (searched.compiler, searched.options, searched.device) == (profiled.compiler, profiled.options, device)
    assert cli.main(["report", str(profiled.id), str(searched.id), "--store", str(store),
                     "-o", str(tmp_path / "report")]) == 0
    assert f"report of record {profiled.id} vs {searched.id}" in capsys.readouterr().out

    again = profile(result.exported / "firmware", device, runs=1, store=store).record
    chosen = {0.0: profiled, 0.5: searched}[result.chosen.uniform]
    assert (again.architecture, again.median, again.layers) == (chosen.architecture, chosen.median, chosen.layers)


def _flash_script(folder: Path, port: int) -> Path:
    """A flash command for QEMU as a board on socket://127.0.0.1:PORT: it stops the QEMU it started
    before, boots the firmware given as $1 with the board's UART on that TCP port and leaves it
    running (as a board stays powered after flashing)."""
    qemu = qemu_command(load_target("mps2-an386"), Path("/firmware.elf"), f"tcp:127.0.0.1:{port},server=on,wait=off")
    script = folder / "flash.sh"
    script.write_text(f"""#!/bin/sh
cd {shlex.quote(str(folder))}
if [ -f qemu.pid ]; then
  kill "$(cat qemu.pid)"
  for _ in $(seq 50); do kill -0 "$(cat qemu.pid)" 2>/dev/null || break; sleep 0.1; done
fi
echo "$1" >> flashed.txt
{shlex.join(qemu[:-1])} "$1" > qemu.log 2>&1 &
echo $! > qemu.pid
""")
    return script


@pytest.mark.qemu
@pytest.mark.slow  # a two-trial search
def test_search_on_a_socket_board_flashes_each_candidate(tmp_path):
    """A search on socket:// (QEMU's UART, as a board's serial link) with a flash command: each
    measured candidate's profile.elf is flashed (QEMU restarted on it) and measured over the link."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = _flash_script(tmp_path, port)
    device = f"socket://127.0.0.1:{port}?board=mps2-an386"
    try:
        result = edgeprune.search("digits_cnn", device=device, flash=f"sh {script} {{elf}}",
                                  out=tmp_path / "search", trials=2, uniform=(0.0, 0.5), train_epochs=1,
                                  finetune_epochs=1, seed=0, progress=False, export=False,
                                  store=tmp_path / "results.sqlite")
    finally:
        if (tmp_path / "qemu.pid").is_file():
            os.kill(int((tmp_path / "qemu.pid").read_text()), signal.SIGKILL)
    unpruned, pruned = result.uniform
    assert not (unpruned.cached or pruned.cached) and pruned.instructions < unpruned.instructions
    flashed = (tmp_path / "flashed.txt").read_text().split()
    assert len(flashed) == 2 and all(path.endswith("profile.elf") for path in flashed)
    with ResultsStore(tmp_path / "results.sqlite") as results:
        records = results.latest(2)
    assert [r.median for r in reversed(records)] == [unpruned.instructions, pruned.instructions]
    assert all(r.device == device and r.unit == "cycles" and r.outputs_match for r in records)
    assert result.unit == "cycles" and result.method == "SysTick on the board"
