"""The report: valid PNG charts of non-trivial size and an HTML page that shows them."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import matplotlib.image
import pytest

from edgeprune.errors import EdgepruneError
from edgeprune.compile.elfsize import CATEGORIES, MemoryBreakdown
from edgeprune.profile.report import latency_chart, layer_rows, peak_ram_bytes, write_report
from edgeprune.profile.store import Record

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def record(record_id: int, scale: float, memory: bool = True) -> Record:
    mem = MemoryBreakdown(flash={**dict.fromkeys(CATEGORIES, 0), "weights": int(9000 * scale), "libc": 3000},
                          ram={**dict.fromkeys(CATEGORIES, 0), "arena": int(8192 * scale), "stack": 2048})
    layers = [(f"conv{i}", 1000.0 * (i + 1) * scale) for i in range(6)]
    return Record("ab" * 32, {"opt": 3}, "mps2-an386", "qemu:mps2-an386", "instructions",
                  [sum(v for _, v in layers)] * 3, layers, 900, mem if memory else None, True, 0.0,
                  id=record_id)


def check_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 5000
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 100
    assert image.std() > 0  # not a blank canvas


def test_one_record(tmp_path: Path) -> None:
    page = write_report([record(1, 1.0)], tmp_path)
    text = page.read_text()
    for png in ("report-latency.png", "report-memory.png"):
        assert f'src="{png}"' in text
        check_png(tmp_path / png)
    assert "conv5" in text and "6,000" in text and "arena" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report-latency.png", "report-memory.png", "report.html"]


def test_two_records_compared(tmp_path: Path) -> None:
    page = write_report([record(1, 1.0), record(2, 0.5)], tmp_path, name="cmp")
    text = page.read_text()
    assert "#1 mps2-an386 vs #2 mps2-an386" in text and "0.500" in text  # ratio column
    check_png(tmp_path / "cmp-latency.png")


def test_without_memory_and_bad_requests(tmp_path: Path) -> None:
    page = write_report([record(1, 1.0, memory=False)], tmp_path)
    assert "No memory breakdown" in page.read_text() and not (tmp_path / "report-memory.png").exists()
    other = Record("x", {}, "b", "d", "cycles", [1.0], [("a", 1.0)])
    with pytest.raises(EdgepruneError, match="cannot compare instructions with cycles"):
        write_report([record(1, 1.0), other], tmp_path)
    with pytest.raises(EdgepruneError, match="one or two records"):
        write_report([], tmp_path)


def test_a_kernel_run_several_times_is_one_bar_per_execution_in_order(tmp_path: Path) -> None:
    """KWS runs one pointwise kernel four times: four bars, not one (issue 17, item 10)."""
    layers = [("conv2d_int81", 500.0), ("conv2d_int82", 1450.0), ("dw", 300.0), ("conv2d_int82", 1451.0),
              ("dw", 301.0), ("conv2d_int82", 1452.0), ("dense", 20.0)]
    kws = Record("k" * 64, {}, "mps2-an386", "qemu:mps2-an386", "instructions", [5474.0], layers, id=7)
    assert layer_rows([kws]) == [(f"{i} {name}", [value]) for i, (name, value) in enumerate(layers)]

    page = write_report([kws], tmp_path).read_text()
    where = [page.index(f"<tr><td>{i} {name}</td><td>{value:,.0f}</td></tr>") for i, (name, value) in enumerate(layers)]
    assert where == sorted(where)  # each execution its own row, in execution order
    chart = latency_chart([kws], tmp_path / "chart.png")
    bars = chart.axes[0].patches
    assert [bar.get_width() for bar in bars] == [value for _, value in layers]
    assert [label.get_text() for label in chart.axes[0].get_yticklabels()] == [
        f"{i} {name}" for i, (name, _) in enumerate(layers)]


def test_two_records_line_up_by_position_and_name(tmp_path: Path) -> None:
    first = Record("a" * 64, {}, "b", "d", "instructions", [6.0], [("x", 1.0), ("y", 2.0), ("y", 3.0)])
    second = Record("b" * 64, {}, "b", "d", "instructions", [5.0], [("x", 1.5), ("z", 2.5), ("y", 1.0)])
    assert layer_rows([first, second]) == [("0 x", [1.0, 1.5]), ("1 y", [2.0, None]), ("1 z", [None, 2.5]),
                                           ("2 y", [3.0, 1.0])]


def test_instructions_and_cycles_are_labelled_apart() -> None:
    from edgeprune.profile.report import unit_label

    qemu = Record("x", {}, "microbit", "qemu:microbit", "instructions", [1.0], method="QEMU, -icount shift=0")
    board = Record("x", {}, "nucleo-l4r5zi", "serial:///dev/ttyACM0", "cycles", [1.0],
                   method="DWT cycle counter on the board")
    assert unit_label(qemu) == "instructions, not cycles (QEMU, -icount shift=0)"
    assert unit_label(board) == "cycles (DWT cycle counter on the board)"


def test_a_board_record_is_reported_in_its_unit(tmp_path: Path) -> None:
    board = dataclasses.replace(record(1, 1.0), unit="cycles", method="DWT cycle counter on the board")
    text = write_report([board], tmp_path).read_text()
    assert "layer (cycles, last run)" in text and "median (cycles)" in text and "instructions" not in text


def test_arena_over_the_steps(tmp_path: Path) -> None:
    """With the model's arena plan known, the report draws it and names the peak RAM."""
    buffers = [{"offset": 0, "bytes": 3072, "first": -1, "last": 0, "holds": ["input 0"]},
               {"offset": 3072, "bytes": 8192, "first": 0, "last": 2, "holds": ["0 conv0", "2 conv2"]},
               {"offset": 0, "bytes": 2048, "first": 1, "last": 6, "holds": ["1 conv1", "output 0"]}]
    arena = {"steps": 6, "arena_bytes": 11264, "liveness_bound_bytes": 11264, "buffers": buffers,
             "workspace_outside_arena_bytes": 512, "io_outside_arena_bytes": 0}
    with_arena = record(1, 1.0)
    with_arena = dataclasses.replace(with_arena, memory=dataclasses.replace(with_arena.memory, arena=arena))
    assert peak_ram_bytes(with_arena) == 11264 + 512 + 900  # arena + workspace beside it + stack used
    assert MemoryBreakdown.from_dict(with_arena.memory.to_dict()) == with_arena.memory  # stored as is
    page = write_report([with_arena], tmp_path)
    assert 'src="report-arena-0.png"' in page.read_text() and "<td>12676</td>" in page.read_text()
    check_png(tmp_path / "report-arena-0.png")
