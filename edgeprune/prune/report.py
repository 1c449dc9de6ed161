"""Per-layer MACs and parameters before and after a model change, as records and a text table."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from edgeprune.models.stats import LayerStats, ModelStats


@dataclass(frozen=True)
class LayerChange:
    """One compute layer before and after; zero counts where the layer does not exist."""

    name: str
    kind: str
    channels_before: int
    channels_after: int
    macs_before: int
    macs_after: int
    params_before: int
    params_after: int


@dataclass(frozen=True)
class Report:
    """Per-layer changes and model totals."""

    layers: list[LayerChange]
    macs_before: int
    macs_after: int
    params_before: int
    params_after: int

    @property
    def macs_reduction(self) -> float:
        """Fraction of MACs removed, in [0, 1]."""
        return 1 - self.macs_after / self.macs_before

    def to_dict(self) -> dict:
        return {**asdict(self), "macs_reduction": self.macs_reduction}

    def table(self) -> str:
        """A fixed-width text table of the changed and unchanged layers and the totals."""
        rows = [f"{'layer':<24} {'kind':<9} {'channels':>11} {'MACs':>21} {'params':>17}"]
        for c in self.layers:
            rows.append(f"{c.name:<24} {c.kind:<9} {c.channels_before:>5}->{c.channels_after:<5} "
                        f"{c.macs_before:>10}->{c.macs_after:<10} "
                        f"{c.params_before:>8}->{c.params_after:<8}")
        rows.append(f"{'total':<24} {'':<9} {'':>11} {self.macs_before:>10}->{self.macs_after:<10} "
                    f"{self.params_before:>8}->{self.params_after:<8}")
        return "\n".join(rows)


def compare(before: ModelStats, after: ModelStats) -> Report:
    """Pair the layers of two counts by name (layers may be added or removed)."""
    old, new = before.by_name(), after.by_name()
    empty = LayerStats("", "", 0, 0, (0,))
    changes = []
    for name in [*old, *(n for n in new if n not in old)]:
        a, b = old.get(name, empty), new.get(name, empty)
        changes.append(LayerChange(name, a.kind or b.kind, a.output_shape[0], b.output_shape[0],
                                   a.macs, b.macs, a.params, b.params))
    return Report(changes, before.macs, after.macs, before.params, after.params)
