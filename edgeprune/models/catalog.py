"""What the zoo holds, one row per model: `edgeprune zoo` and `edgeprune.zoo()`."""
from __future__ import annotations

from dataclasses import dataclass

from edgeprune.models import data, stats, zoo


@dataclass(frozen=True)
class ZooEntry:
    """A zoo model: the architecture it reproduces, its input, its size and its default data."""

    name: str
    source: str
    input_shape: tuple[int, ...]
    macs: int    # conv, depthwise and dense multiply-accumulates per inference
    params: int  # weights and biases with BatchNorm folded (the deployed count)
    data: str    # what prune, quantize and search train and calibrate on by default


def default_data(name: str) -> str:
    """What a zoo model trains and is scored on by default, in a few words."""
    spec = zoo.spec(name)
    shaped = data.describe_digits(spec.input_shape, data.digits_classes(spec.num_outputs))
    return shaped + (" as normal, synthetic anomalies (ROC-AUC)" if name == "ad_autoencoder" else "")


def entries() -> list[ZooEntry]:
    """Every zoo model, by name, with its MACs and parameters counted on the built model."""
    rows = []
    for name in zoo.model_names():
        spec = zoo.spec(name)
        counted = stats.count(zoo.build_model(name), spec.input_shape)
        rows.append(ZooEntry(name, spec.source, spec.input_shape, counted.macs, counted.params,
                             default_data(name)))
    return rows


def table(rows: list[ZooEntry]) -> str:
    """The rows as the aligned text table `edgeprune zoo` prints."""
    header = ("model", "source architecture", "input", "MACs", "params", "default data")
    cells = [header] + [(r.name, r.source, "x".join(map(str, r.input_shape)), f"{r.macs:,}", f"{r.params:,}", r.data)
                        for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    numeric = {3, 4}
    return "\n".join(
        "  ".join(cell.rjust(w) if i in numeric else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
        for row in cells)
