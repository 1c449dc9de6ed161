"""Structured channel pruning on torch-pruning's dependency graph, with per-layer ratios.

edgeprune adds: ratios by layer name, channel counts rounded to a multiple, the network outputs
kept intact, clear errors on bad input, and a per-layer MACs/params report.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import torch
import torch_pruning as tp
from torch import nn

from edgeprune.models import stats
from edgeprune.prune.criteria import Criterion, criterion as make_criterion
from edgeprune.prune.errors import PruneError
from edgeprune.prune.report import Report, compare

Ratios = float | Mapping[str, float]


def is_depthwise(module: nn.Module) -> bool:
    return isinstance(module, nn.Conv2d) and module.groups > 1 and module.groups == module.in_channels


def prunable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Conv and Linear layers by name; depthwise convs follow their producer and are left out."""
    return {name: m for name, m in model.named_modules()
            if isinstance(m, stats.COMPUTE_LAYERS) and not is_depthwise(m)}


def check_runs(model: nn.Module, input_shape: tuple[int, ...]) -> list[nn.Module]:
    """Run `model` once; return the conv/linear layers in execution order. PruneError if it fails."""
    order: list[nn.Module] = []
    hooks = [m.register_forward_hook(lambda m, _i, _o: order.append(m))
             for m in model.modules() if isinstance(m, stats.COMPUTE_LAYERS)]
    try:
        with torch.no_grad():
            output = model(torch.zeros(input_shape))
    except Exception as exc:
        raise PruneError(f"model cannot be traced: forward on input shape {tuple(input_shape)} "
                         f"failed with {type(exc).__name__}: {exc}") from exc
    finally:
        for hook in hooks:
            hook.remove()
    if not isinstance(output, torch.Tensor):
        raise PruneError(f"model cannot be traced: forward returned {type(output).__name__}, "
                         "expected one tensor")
    if not order:
        raise PruneError("model has no Conv or Linear layer to prune")
    return order


def layer_by_name(model: nn.Module, names: Iterable[str]) -> list[nn.Module]:
    """Modules for `names`; PruneError naming the unknown ones and the prunable ones."""
    modules = dict(model.named_modules())
    unknown = [n for n in names if n not in modules]
    if unknown:
        raise PruneError(f"unknown layer(s) {unknown}; prunable layers: "
                         f"{', '.join(prunable_layers(model))}")
    return [modules[n] for n in names]


def check_ratio(name: str, ratio: float) -> float:
    if not 0.0 <= ratio < 1.0:
        raise PruneError(f"pruning ratio {ratio} for {name} is outside [0, 1)")
    return float(ratio)


def resolve_ratios(model: nn.Module, ratios: Ratios) -> tuple[float, dict[nn.Module, float]]:
    """(default ratio, per-module ratios) from one ratio or a mapping of layer name to ratio."""
    if isinstance(ratios, Mapping):
        per_layer = {name: check_ratio(name, r) for name, r in ratios.items()}
        return 0.0, dict(zip(layer_by_name(model, per_layer), per_layer.values()))
    return check_ratio("the model", ratios), {}


class NearestRoundingPruner(tp.pruner.BasePruner):
    """torch-pruning's pruner with channels kept rounded to the nearest multiple, at least one
    multiple (torch-pruning rounds down, so a layer of 16 at ratio 0.8 with round_to 4 would
    keep 0 channels, which it refuses, and the layer stayed whole)."""

    def _round_to(self, n_pruned: int, current_channels: int, round_to: int) -> int:
        return current_channels - kept_channels(current_channels - n_pruned, current_channels,
                                                round_to)


def kept_channels(kept: int, channels: int, round_to: int) -> int:
    """`kept` rounded to the nearest multiple of `round_to` (halves up), at least one multiple,
    at most `channels`."""
    return min(channels, max(round_to, (kept + round_to // 2) // round_to * round_to))


def dependency_pruner(model: nn.Module, input_shape: tuple[int, ...], ratios: Ratios,
                      scorer: Criterion, round_to: int = 1,
                      ignored: Iterable[str] = ()) -> tp.pruner.BasePruner:
    """A torch-pruning pruner for `model`; the layers that produce the output are never pruned."""
    if round_to < 1:
        raise PruneError(f"round_to must be a positive channel multiple, got {round_to}")
    order = check_runs(model, input_shape)
    default, per_layer = resolve_ratios(model, ratios)
    keep = [order[-1], *layer_by_name(model, ignored)]
    try:
        return NearestRoundingPruner(
            model, torch.zeros(input_shape), importance=scorer, pruning_ratio=default,
            pruning_ratio_dict=per_layer, ignored_layers=keep,
            round_to=round_to if round_to > 1 else None)
    except Exception as exc:
        raise PruneError(f"model cannot be traced by torch-pruning: {exc}") from exc


def prune_channels(model: nn.Module, input_shape: tuple[int, ...], ratios: Ratios,
                   criterion: str | Criterion = "l1", round_to: int = 1,
                   ignored: Iterable[str] = (), x: np.ndarray | None = None,
                   y: np.ndarray | None = None) -> Report:
    """Remove output channels of conv/linear layers in place, keeping coupled layers consistent.

    `ratios` is the fraction of channels to remove, either for every prunable layer or per layer
    name (others untouched); channels kept are floor(channels * (1 - ratio)) rounded to the
    nearest multiple of `round_to` (at least one multiple). Coupled layers
    (residual adds, concat, depthwise, BN, the Linear after a flatten) follow. `x`, `y` feed
    data-driven criteria (Taylor). Returns the per-layer MACs/params report.
    """
    scorer = make_criterion(criterion) if isinstance(criterion, str) else criterion
    was_training = model.training
    model.eval()
    try:
        pruner = dependency_pruner(model, input_shape, ratios, scorer, round_to, ignored)
        before = stats.count(model, input_shape)
        scorer.prepare(model, x, y)
        pruner.step()
        model.zero_grad(set_to_none=True)
    finally:
        model.train(was_training)
    return compare(before, stats.count(model, input_shape))


def rank_channels(model: nn.Module, input_shape: tuple[int, ...], layer: str,
                  criterion: str | Criterion = "l1", x: np.ndarray | None = None,
                  y: np.ndarray | None = None) -> torch.Tensor:
    """Scores of the output channels of `layer` (with its coupled group); lowest is pruned first."""
    scorer = make_criterion(criterion) if isinstance(criterion, str) else criterion
    check_runs(model, input_shape)
    (module,) = layer_by_name(model, [layer])
    graph = tp.DependencyGraph().build_dependency(model, torch.zeros(input_shape))
    prune_fn = graph.get_pruner_of_module(module).prune_out_channels
    channels = graph.get_out_channels(module)
    group = graph.get_pruning_group(module, prune_fn, list(range(channels)))
    scorer.prepare(model, x, y)
    scores = scorer(group)
    model.zero_grad(set_to_none=True)
    if scores is None:
        raise PruneError(f"criterion {scorer.name!r} cannot score layer {layer!r}")
    return scores
