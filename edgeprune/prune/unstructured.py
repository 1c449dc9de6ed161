"""Unstructured pruning: per-weight scores, masks held by torch.nn.utils.prune, a sparsity report.

`set_masks` zeroes the lowest-scoring weights of every conv/linear layer through a torch pruning
mask (`weight = weight_orig * weight_mask`), so the zeros stay zero while the model trains;
`make_permanent` then folds the masks into plain weights. Weights already masked are pruned first,
so a rising sparsity only adds zeros. Zeros shrink nothing on their own: they pay off with sparse
kernels or compression only.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune as torch_prune

from edgeprune.models.stats import COMPUTE_LAYERS
from edgeprune.prune.errors import PruneError

CRITERIA = ("magnitude", "random", "taylor")
SCOPES = ("layer", "global")
# Which weights go together: each on its own, blocks of four along the reduction (input channel x
# kernel row x kernel column, the block-sparse kernels' blocks), or 2 of every 4 there (N:M).
PATTERNS = ("weights", "block4", "2:4")
BLOCK = 4


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
    """Count zero weights in every conv/linear layer (masked or plain)."""
    return SparsityReport([
        LayerSparsity(name, int((m.weight == 0).sum()), m.weight.numel())
        for name, m in weight_layers(model).items()])


def weight_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The conv/linear layers whose weights unstructured pruning masks, by name."""
    return {name: m for name, m in model.named_modules() if isinstance(m, COMPUTE_LAYERS)}


def check_sparsity(what: str, sparsity: float) -> float:
    if not 0.0 <= sparsity < 1.0:
        raise PruneError(f"{what} {sparsity} is outside [0, 1)")
    return sparsity


def current_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """Each layer's mask: its torch pruning mask, or where its weights are non-zero."""
    return {name: getattr(m, "weight_mask", (m.weight != 0).float()).detach().clone()
            for name, m in weight_layers(model).items()}


def taylor_scores(model: nn.Module, x: np.ndarray, y: np.ndarray, batches: int = 4,
                  batch_size: int = 64) -> dict[str, torch.Tensor]:
    """|weight x dLoss/dweight| per weight (first-order Taylor), gradients summed over a few batches."""
    layers = weight_layers(model)
    params = {name: getattr(m, "weight_orig", m.weight) for name, m in layers.items()}
    was_training = model.training
    model.eval()
    model.zero_grad()
    try:
        for start in range(0, min(len(x), batches * batch_size), batch_size):
            inputs = torch.from_numpy(x[start:start + batch_size])
            labels = torch.from_numpy(y[start:start + batch_size])
            F.cross_entropy(model(inputs), labels).backward()
        scores = {name: (p.detach() * p.grad).abs() for name, p in params.items()}
    finally:
        model.zero_grad()
        model.train(was_training)
    return scores


def scores(model: nn.Module, criterion: str, x: np.ndarray | None = None,
           y: np.ndarray | None = None, generator: torch.Generator | None = None
           ) -> dict[str, torch.Tensor]:
    """One importance score per weight of every layer; the lowest are pruned first."""
    layers = weight_layers(model)
    if criterion == "magnitude":
        return {name: m.weight.detach().abs() for name, m in layers.items()}
    if criterion == "random":
        return {name: torch.rand(m.weight.shape, generator=generator) for name, m in layers.items()}
    if criterion == "taylor":
        if x is None or y is None:
            raise PruneError("the taylor criterion needs data (x, y) to compute gradients")
        return taylor_scores(model, x, y)
    raise PruneError(f"unknown unstructured criterion {criterion!r}; use one of {', '.join(CRITERIA)}")


def lowest(values: torch.Tensor, count: int) -> torch.Tensor:
    """A 0/1 mask of `values`' shape with its `count` lowest entries 0."""
    mask = torch.ones(values.numel())
    if count:
        mask[torch.topk(values.flatten(), count, largest=False).indices] = 0.0
    return mask.view_as(values)


def _grouped(values: torch.Tensor, fill: float) -> torch.Tensor:
    """A weight-shaped tensor [O, ...] as [O, G, 4]: blocks of four along the flattened reduction,
    the last one padded with `fill`."""
    rows = values.reshape(values.shape[0], -1)
    return F.pad(rows, (0, -rows.shape[1] % BLOCK), value=fill).view(rows.shape[0], -1, BLOCK)


def _ungrouped(blocks: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The inverse of `_grouped`: [O, G, 4] back to `like`'s shape, padding dropped."""
    rows = blocks.reshape(blocks.shape[0], -1)[:, :like[0].numel()]
    return rows.reshape(like.shape)


def n_of_m_masks(scores_by_layer: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """2:4 masks: in every block of four along the reduction, the two lowest scores zeroed (a
    block cut short by the reduction's end keeps up to two)."""
    masks = {}
    for name, values in scores_by_layer.items():
        blocks = _grouped(values, float("-inf"))
        lowest_two = blocks.topk(2, dim=2, largest=False).indices
        mask = torch.ones_like(blocks).scatter_(2, lowest_two, 0.0)
        masks[name] = _ungrouped(mask, values)
    return masks


def block_masks(scores_by_layer: dict[str, torch.Tensor], previous: dict[str, torch.Tensor], sparsity: float,
                scope: str = "layer", first_layer_cap: float | None = None) -> dict[str, torch.Tensor]:
    """`compute_masks` over blocks of four along the reduction: a block scores the sum of its
    weights' scores and is pruned whole; a block already all zero goes first."""
    block_scores = {name: _grouped(s, 0.0).sum(dim=2) for name, s in scores_by_layer.items()}
    block_previous = {name: _grouped(previous[name], 0.0).amax(dim=2) for name in scores_by_layer}
    masks = compute_masks(block_scores, block_previous, sparsity, scope, first_layer_cap)
    return {name: _ungrouped(masks[name][..., None].expand(*masks[name].shape, BLOCK), scores_by_layer[name])
            for name in masks}


def compute_masks(scores_by_layer: dict[str, torch.Tensor], previous: dict[str, torch.Tensor],
                  sparsity: float, scope: str = "layer",
                  first_layer_cap: float | None = None) -> dict[str, torch.Tensor]:
    """Masks zeroing `sparsity` of the weights by lowest score; entries 0 in `previous` go first.

    scope="layer": every layer loses `sparsity` of its weights; "global": one threshold over the
    layers. `first_layer_cap` prunes the first layer on its own to at most that sparsity (it has
    few weights and every later layer depends on it); the other layers lose correspondingly more,
    so that the model's sparsity is still `sparsity`.
    """
    check_sparsity("sparsity", sparsity)
    if scope not in SCOPES:
        raise PruneError(f"unknown scope {scope!r}; use 'layer' or 'global'")
    ranked = {name: s.masked_fill(previous[name] == 0, float("-inf")) for name, s in scores_by_layer.items()}
    names = list(ranked)
    masks = {}
    if first_layer_cap is not None:
        first = names.pop(0)
        cap = check_sparsity("first-layer cap", first_layer_cap)
        masks[first] = lowest(ranked[first], round(min(sparsity, cap) * ranked[first].numel()))
        rest = sum(ranked[name].numel() for name in names)
        total = rest + ranked[first].numel()
        zeros = round(sparsity * total) - int((masks[first] == 0).sum())
        sparsity = min(zeros / rest, 1.0) if rest else 0.0
    if scope == "layer":
        masks |= {name: lowest(ranked[name], round(sparsity * ranked[name].numel())) for name in names}
    elif names:
        joint = torch.cat([ranked[name].flatten() for name in names])
        flat = lowest(joint, round(sparsity * joint.numel()))
        for name, part in zip(names, flat.split([ranked[name].numel() for name in names])):
            masks[name] = part.view_as(ranked[name])
    return masks


def set_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Put `masks` in force: a torch pruning mask on layers without one, else replace it in place."""
    layers = weight_layers(model)
    for name, mask in masks.items():
        module = layers[name]
        if hasattr(module, "weight_mask"):
            module.weight_mask.copy_(mask)
            with torch.no_grad():
                module.weight = module.weight_orig * module.weight_mask
        else:
            torch_prune.custom_from_mask(module, "weight", mask)


def make_permanent(model: nn.Module) -> None:
    """Fold every pruning mask into its weights; no masks or re-parametrisation remain."""
    for module in weight_layers(model).values():
        if torch_prune.is_pruned(module) and hasattr(module, "weight_mask"):
            torch_prune.remove(module, "weight")


def prune_weights(model: nn.Module, sparsity: float, scope: str = "layer", criterion: str = "magnitude",
                  *, x: np.ndarray | None = None, y: np.ndarray | None = None,
                  first_layer_cap: float | None = None, generator: torch.Generator | None = None,
                  pattern: str = "weights") -> None:
    """Mask the lowest-scoring `sparsity` of the weights by `criterion` (see `compute_masks`), as
    single weights, blocks of four (`block_masks`) or 2 of every 4 (`n_of_m_masks`: `sparsity`
    does not apply); the masks stay in force until `make_permanent`."""
    chosen = scores(model, criterion, x, y, generator)
    if pattern == "2:4":
        masks = n_of_m_masks(chosen)
    elif pattern == "block4":
        masks = block_masks(chosen, current_masks(model), sparsity, scope, first_layer_cap)
    elif pattern == "weights":
        masks = compute_masks(chosen, current_masks(model), sparsity, scope, first_layer_cap)
    else:
        raise PruneError(f"unknown pattern {pattern!r}; use one of {', '.join(PATTERNS)}")
    set_masks(model, masks)
