"""The report: valid PNG charts of non-trivial size and an HTML page that shows them."""
from __future__ import annotations

from pathlib import Path

import matplotlib.image
import pytest

from edgeprune.errors import EdgepruneError
from edgeprune.profile.elfsize import CATEGORIES, MemoryBreakdown
from edgeprune.profile.report import write_report
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
