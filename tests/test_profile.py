"""`edgeprune profile` and `edgeprune report` end to end on QEMU, and the store after a QEMU that
dies mid-run."""
import json
import os
import signal
import struct
import threading
import time
from pathlib import Path

import pytest

import edgeprune
from edgeprune.artefact import content_hash
from edgeprune.cli import main
from edgeprune.compile.api import step_label
from edgeprune.errors import DeviceError, EdgepruneError
from edgeprune.profile.store import ResultsStore

pytestmark = pytest.mark.qemu
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_profile_stores_one_record_and_report_draws_it(compiled, tmp_path, capsys):
    m4, m55 = compiled("digits_cnn", "mps2-an386"), compiled("digits_cnn", "mps3-an547")
    store, out = tmp_path / "results.sqlite", tmp_path / "m4.json"
    assert main(["profile", str(m4.path), "--runs", "3", "--store", str(store), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "instructions per inference: median" in printed and "outputs vs onnxruntime: match" in printed
    assert all(step_label(step) in printed for step in m4.manifest["steps"])

    written = json.loads(out.read_text())
    assert written["device"] == "qemu:mps2-an386" and written["unit"] == "instructions"
    assert len(written["runs"]) == 3 and written["outputs_match"] is True
    assert written["relative_error"] < 1e-4
    assert abs(written["layer_coverage"] - 1) <= 0.001
    assert written["memory"] == {**m4.manifest["elf"], "arena": m4.manifest["memory"]["arena"]}

    m55_report = edgeprune.profile(m55, "qemu:mps3-an547", runs=2, store=store)
    with ResultsStore(store) as results:
        records = results.find(content_hash(m4.onnx))
        assert [r.id for r in records] == [m55_report.record.id, written["id"]]
        assert records[1].board == "mps2-an386" and records[1].median == written["median"]
        assert records[1].options == m4.manifest["options"]

    assert main(["report", str(written["id"]), str(m55_report.record.id), "--store", str(store),
                 "-o", str(tmp_path / "report")]) == 0
    page = (tmp_path / "report" / "report.html").read_text()
    for image in ("report-latency.png", "report-memory.png", "report-arena-0.png", "report-arena-1.png"):
        assert f'src="{image}"' in page
        width, height = _png_size(tmp_path / "report" / image)
        assert width >= 400 and height >= 150
        assert (tmp_path / "report" / image).stat().st_size > 5000
    assert "#1 mps2-an386" in page and "mps3-an547" in page


def test_board_mismatch_is_refused_before_qemu_starts(compiled, tmp_path):
    with pytest.raises(EdgepruneError, match="compiled for mps2-an386, not mps3-an547"):
        edgeprune.profile(compiled("digits_cnn", "mps2-an386"), "qemu:mps3-an547", store=tmp_path / "s")
    assert not (tmp_path / "s").exists()


def _qemu_children() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            name, fields = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
            if name.startswith("qemu-system") and int(fields[1]) == os.getpid():
                pids.append(int(entry))
    return pids


def test_qemu_killed_mid_run_leaves_the_store_clean(compiled, tmp_path):
    model = compiled("digits_cnn", "mps2-an386")
    store = tmp_path / "results.sqlite"
    edgeprune.profile(model, runs=1, store=store)  # one good record before

    def kill_qemu_once_it_runs():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pids = _qemu_children()
            if pids:
                time.sleep(0.5)  # into the inferences (thousands of them take minutes)
                for pid in pids:
                    os.kill(pid, signal.SIGKILL)
                return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_qemu_once_it_runs)
    killer.start()
    try:
        with pytest.raises(DeviceError, match=r"QEMU was killed \(signal 9\)"):
            edgeprune.profile(model, runs=5000, store=store, json_path=tmp_path / "half.json")
    finally:
        killer.join()
    with ResultsStore(store) as results:
        assert len(results.latest(10)) == 1
    assert not (tmp_path / "half.json").exists()
    assert _qemu_children() == []
