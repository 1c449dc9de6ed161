"""A report of one measurement record, or of two side by side: per-layer latency and memory
breakdown as PNG charts (matplotlib) and an HTML page that shows them with tables."""
from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Sequence

from matplotlib.figure import Figure  # renders with Agg; no pyplot, no global state
from matplotlib.patches import Rectangle

from edgeprune._atomic import write_bytes_atomic, write_text_atomic
from edgeprune.errors import EdgepruneError
from edgeprune.compile.elfsize import CATEGORIES
from edgeprune.profile.store import Record


def _label(record: Record) -> str:
    return f"#{record.id} {record.board}" if record.id is not None else record.board


def unit_label(record: Record) -> str:
    """What the figures are and how they were counted: instructions under QEMU are not cycles."""
    if record.unit == "instructions":
        return f"instructions, not cycles ({record.method or 'emulator count'})"
    return f"{record.unit} ({record.method})" if record.method else record.unit


def _save(figure: Figure, path: Path) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    write_bytes_atomic(path, buffer.getvalue())


def layer_rows(records: Sequence[Record]) -> list[tuple[str, list[float | None]]]:
    """One row per executed layer, in execution order: its label (position and name; a kernel that
    runs several times is several layers) and each record's figure (None where a record has no such
    layer). Two records line up where their layers at a position have the same name."""
    steps = [{(i, name): value for i, (name, value) in enumerate(r.layers)} for r in records]
    keys: dict[tuple[int, str], None] = {}
    for i in range(max(len(r.layers) for r in records)):
        keys.update(((i, r.layers[i][0]), None) for r in records if i < len(r.layers))
    return [(f"{i} {name}", [values.get((i, name)) for values in steps]) for i, name in keys]


def latency_chart(records: Sequence[Record], path: Path) -> Figure:
    """Horizontal bars: each executed layer's figure in execution order, one bar per record; saved
    as a PNG at `path` and returned."""
    rows = layer_rows(records)
    figure = Figure(figsize=(8, 1.5 + 0.3 * len(rows) * len(records)), layout="tight")
    axes = figure.subplots()
    height = 0.8 / len(records)
    for i, record in enumerate(records):
        axes.barh([n + i * height for n in range(len(rows))], [values[i] or 0.0 for _, values in rows],
                  height=height, label=_label(record))
    axes.set_yticks([n + height * (len(records) - 1) / 2 for n in range(len(rows))], [label for label, _ in rows])
    axes.invert_yaxis()
    axes.set_xlabel(f"{unit_label(records[0])} per layer (last run)")
    axes.set_title("Per-layer latency")
    axes.legend()
    _save(figure, path)
    return figure


def memory_chart(records: Sequence[Record], path: Path) -> None:
    """Stacked bars of flash and RAM by category, for each record."""
    bars = [(f"{_label(r)} {kind}", getattr(r.memory, kind)) for r in records for kind in ("flash", "ram")]
    figure = Figure(figsize=(9, 1.5 + 0.5 * len(bars)), layout="tight")
    axes = figure.subplots()
    left = [0] * len(bars)
    for category in CATEGORIES:
        sizes = [part.get(category, 0) / 1024 for _, part in bars]
        if any(sizes):
            axes.barh([label for label, _ in bars], sizes, left=left, label=category)
            left = [a + b for a, b in zip(left, sizes)]
    axes.invert_yaxis()
    axes.set_xlabel("KiB")
    axes.set_title("Memory by category")
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    _save(figure, path)


def peak_ram_bytes(record: Record) -> int | None:
    """Arena + input/output and workspace beside it + measured stack, if all are known."""
    arena = record.memory.arena if record.memory else None
    if arena is None or record.stack_bytes is None:
        return None
    return (arena["arena_bytes"] + arena["io_outside_arena_bytes"] + arena["workspace_outside_arena_bytes"]
            + record.stack_bytes)


def arena_chart(record: Record, path: Path) -> None:
    """The arena over the steps ("memory over layers"): one rectangle per buffer at its offset over
    the steps it lives, the live bytes per step, the liveness bound, the planned arena and the
    peak RAM (with input/output and workspace beside the arena, and the measured stack)."""
    arena = record.memory.arena
    steps = arena["steps"]
    figure = Figure(figsize=(10, 5.5), layout="tight")
    axes = figure.subplots()
    colours = [f"C{i}" for i in range(10)]
    for i, buffer in enumerate(arena["buffers"]):
        left, width = buffer["first"] - 0.45, buffer["last"] - buffer["first"] + 0.9
        axes.add_patch(Rectangle((left, buffer["offset"] / 1024), width, buffer["bytes"] / 1024,
                                 facecolor=colours[i % 10], edgecolor="black", linewidth=0.5, alpha=0.7))
        if buffer["bytes"] >= 0.04 * max(arena["arena_bytes"], 1):
            text = buffer["holds"][0] + (f" (+{len(buffer['holds']) - 1} in place)" if len(buffer["holds"]) > 1 else "")
            axes.text(left + 0.05, (buffer["offset"] + buffer["bytes"] / 2) / 1024, text[:40], fontsize=6,
                      va="center")
    positions = list(range(-1, steps + 1))
    live = [sum(b["bytes"] for b in arena["buffers"] if b["first"] <= t <= b["last"]) / 1024 for t in positions]
    axes.step(positions, live, where="mid", color="black", linewidth=1, label="live bytes")
    lines = [("liveness bound", arena["liveness_bound_bytes"], "--"), ("planned arena", arena["arena_bytes"], "-")]
    peak = peak_ram_bytes(record)
    if peak is not None:
        lines.append(("peak RAM (arena + I/O and workspace beside it + stack)", peak, ":"))
    for label, value, style in lines:
        axes.axhline(value / 1024, linestyle=style, color="grey", linewidth=1, label=f"{label} {value:,} B")
    axes.set_xlim(-1.5, steps + 0.5)
    axes.set_ylim(0, max(v for _, v, _ in lines) / 1024 * 1.3)  # room for the legend
    axes.set_xlabel("step (-1: inputs written; last: outputs read)")
    axes.set_ylabel("arena offset (KiB)")
    axes.set_title(f"Arena over the steps: {_label(record)}")
    axes.legend(loc="upper right", fontsize="small")
    _save(figure, path)


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cell = lambda v: f"{v:,.0f}" if isinstance(v, float) else html.escape(str(v))  # noqa: E731
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _summary(records: Sequence[Record]) -> str:
    fields = [("model", lambda r: r.model_hash[:12]), ("options", lambda r: r.options),
              ("board", lambda r: r.board), ("device", lambda r: r.device),
              ("measured", unit_label),
              ("runs", lambda r: len(r.runs)), (f"median ({records[0].unit})", lambda r: r.median),
              ("min", lambda r: r.minimum), ("max", lambda r: r.maximum),
              ("stack bytes", lambda r: r.stack_bytes),
              ("flash bytes", lambda r: r.memory.flash_total if r.memory else None),
              ("RAM bytes", lambda r: r.memory.ram_total if r.memory else None),
              ("peak RAM bytes", peak_ram_bytes),
              ("outputs match reference", lambda r: r.outputs_match),
              ("max abs error", lambda r: r.max_abs_error)]
    return _table(["", *map(_label, records)], [[name, *(get(r) for r in records)] for name, get in fields])


def _layers(records: Sequence[Record]) -> str:
    rows = [[label, *("" if v is None else v for v in values)] for label, values in layer_rows(records)]
    if len(records) == 2:
        for row in rows:
            a, b = row[1], row[2]
            row.append(f"{b / a:.3f}" if isinstance(a, float) and isinstance(b, float) and a else "")
    header = [f"layer ({records[0].unit}, last run)", *map(_label, records), *(["ratio"] if len(records) == 2 else [])]
    return _table(header, rows)


def _memory(records: Sequence[Record]) -> str:
    header = ["category", *(f"{_label(r)} {kind}" for r in records for kind in ("flash", "RAM"))]
    rows = [[c, *(part[c] for r in records for part in (r.memory.flash, r.memory.ram))] for c in CATEGORIES]
    return _table(header, rows)


def write_report(records: Sequence[Record], folder: Path, name: str = "report") -> Path:
    """Writes <name>.html with <name>-latency.png (and <name>-memory.png, and <name>-arena-<i>.png per
    record whose model's arena plan is known) into `folder`."""
    if not 1 <= len(records) <= 2:
        raise EdgepruneError(f"a report shows one or two records, not {len(records)}")
    if len({r.unit for r in records}) > 1:
        raise EdgepruneError(f"cannot compare {records[0].unit} with {records[1].unit}")
    folder = Path(folder)
    parts = [f"<h1>edgeprune report: {html.escape(' vs '.join(map(_label, records)))}</h1>",
             _summary(records), "<h2>Per-layer latency</h2>"]
    latency_chart(records, folder / f"{name}-latency.png")
    parts += [f'<img src="{name}-latency.png" alt="per-layer latency">', _layers(records)]
    parts.append("<h2>Memory</h2>")
    if all(r.memory for r in records):
        memory_chart(records, folder / f"{name}-memory.png")
        parts += [f'<img src="{name}-memory.png" alt="memory breakdown">', _memory(records)]
        for i, record in enumerate(r for r in records if r.memory.arena is not None):
            arena_chart(record, folder / f"{name}-arena-{i}.png")
            parts.append(f'<img src="{name}-arena-{i}.png" alt="arena over the steps">')
    else:
        parts.append("<p>No memory breakdown was recorded.</p>")
    page = folder / f"{name}.html"
    style = "body{font-family:sans-serif}td,th{padding:2px 8px;text-align:right}table{border-collapse:collapse}"
    write_text_atomic(page, f"<!doctype html><html><head><meta charset='utf-8'><title>edgeprune report"
                            f"</title><style>{style}</style></head><body>{''.join(parts)}</body></html>\n")
    return page
