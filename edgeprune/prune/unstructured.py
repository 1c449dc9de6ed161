"""Unstructured magnitude pruning (layer-wise or global), made permanent, with a sparsity report.

Zeros shrink nothing on their own: they pay off with sparse kernels or compression only. The
weights are zeroed in place (no masks or re-parametrisation remain in the model).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from edgeprune.models.stats import COMPUTE_LAYERS
from edgeprune.prune.errors import PruneError

@dataclass(frozen=True)
class LayerSparsity:
    name: str
    zeros: int
    total: int

    @property
    def sparsity(self) -> float:
        return self.zeros / self.total


@dataclass(frozen=True)
class SparsityReport:
    """Zero weights of each conv/linear weight tensor and overall."""

    layers: list[LayerSparsity]

    @property
    def sparsity(self) -> float:
        return sum(l.zeros for l in self.layers) / sum(l.total for l in self.layers)

    def to_dict(self) -> dict:
        return {"sparsity": self.sparsity,
                "layers": [{**asdict(l), "sparsity": l.sparsity} for l in self.layers]}

    def table(self) -> str:
        rows = [f"{'layer':<24} {'zeros':>9} {'weights':>9} {'sparsity':>9}"]
        rows += [f"{l.name:<24} {l.zeros:>9} {l.total:>9} {l.sparsity:>9.1%}" for l in self.layers]
        rows.append(f"{'total':<24} {'':>9} {'':>9} {self.sparsity:>9.1%}")
        return "\n".join(rows)


def sparsity_report(model: nn.Module) -> SparsityReport:
    """Count zero weights in every conv/linear layer."""
    return SparsityReport([
        LayerSparsity(name, int((m.weight == 0).sum()), m.weight.numel())
        for name, m in model.named_modules() if isinstance(m, COMPUTE_LAYERS)])


def magnitude_prune(model: nn.Module, sparsity: float, scope: str = "layer") -> SparsityReport:
    """Zero the smallest |weights| of conv/linear layers in place.

    scope="layer": each layer loses `sparsity` of its weights; scope="global": the threshold is
    shared, so layers with many small weights lose more.
    """
    if not 0.0 <= sparsity < 1.0:
        raise PruneError(f"sparsity {sparsity} is outside [0, 1)")
    targets = [(m, "weight") for m in model.modules() if isinstance(m, COMPUTE_LAYERS)]
    if scope == "global":
        torch_prune.global_unstructured(targets, torch_prune.L1Unstructured, amount=sparsity)
    elif scope == "layer":
        for module, param in targets:
            torch_prune.l1_unstructured(module, param, amount=sparsity)
    else:
        raise PruneError(f"unknown scope {scope!r}; use 'layer' or 'global'")
    with torch.no_grad():
        for module, param in targets:
            torch_prune.remove(module, param)
    return sparsity_report(model)
