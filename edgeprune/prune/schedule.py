"""Iterative structured pruning: rounds of prune -> finetune -> evaluate, resumable.

Round k of N removes channels until each layer has lost k/N of its target ratio (counted from the
original width, so rounding does not compound). A round whose validation accuracy falls more than
`max_drop` below the unpruned model's is rejected and the schedule stops with the previous model.
After every accepted round the model and the schedule state go to a checkpoint (atomic write);
running again with the same checkpoint continues where it stopped.
"""
from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from torch import nn
from tqdm.auto import tqdm

from edgeprune.models import stats
from edgeprune.models.data import Dataset
from edgeprune.models.metrics import Metrics, evaluate
from edgeprune.models.train import Recipe, train
from edgeprune.prune import serialize
from edgeprune.prune.criteria import BNScale, bn_l1_penalty
from edgeprune.prune.errors import PruneError
from edgeprune.prune.report import Report, compare
from edgeprune.prune.structured import (Ratios, check_ratio, check_runs, layer_by_name,
                                        prune_channels, prunable_layers)


@dataclass(frozen=True)
class ScheduleConfig:
    """What to prune, how, and how much accuracy it may cost."""

    ratios: Ratios = 0.5
    criterion: str = "l1"
    rounds: int = 3
    round_to: int = 1
    ignored: tuple[str, ...] = ()
    max_drop: float = 0.02
    finetune: Recipe = Recipe(epochs=10, lr=3e-3)
    slimming_epochs: int = 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ratios"] = dict(self.ratios) if isinstance(self.ratios, Mapping) else self.ratios
        d["ignored"] = list(self.ignored)
        return d


@dataclass
class ScheduleResult:
    """The pruned model, per-round records, and the unpruned baseline."""

    model: nn.Module
    baseline: Metrics
    history: list[dict] = field(default_factory=list)
    stopped_early: bool = False
    report: Report | None = None


def layer_targets(model: nn.Module, config: ScheduleConfig,
                  output_layer: nn.Module) -> dict[str, tuple[int, float]]:
    """{layer name: (original channels, final ratio)} for the layers the schedule prunes."""
    layers = prunable_layers(model)
    if isinstance(config.ratios, Mapping):
        layer_by_name(model, config.ratios)
        wanted = {name: check_ratio(name, r) for name, r in config.ratios.items()}
    else:
        ratio = check_ratio("the model", config.ratios)
        layer_by_name(model, config.ignored)
        wanted = {name: ratio for name, m in layers.items()
                  if m is not output_layer and name not in config.ignored}
    modules = dict(model.named_modules())
    return {name: (channels_of(modules[name]), r) for name, r in wanted.items()}


def channels_of(module: nn.Module) -> int:
    return module.out_features if isinstance(module, nn.Linear) else module.out_channels


def round_ratios(model: nn.Module, targets: dict[str, tuple[int, float]],
                 fraction: float) -> dict[str, float]:
    """Per-layer ratios, relative to the current widths, that reach `fraction` of each target."""
    modules = dict(model.named_modules())
    ratios = {}
    for name, (original, ratio) in targets.items():
        current = channels_of(modules[name])
        keep = int(original * (1 - ratio * fraction))
        # torch-pruning keeps int(current * (1 - r)) channels; the margin stops float round-down.
        ratios[name] = max(0.0, (current - keep) / current - 1e-9) if keep < current else 0.0
    return ratios


def resume(checkpoint: Path, model: nn.Module, config: ScheduleConfig) -> tuple[nn.Module, dict]:
    """Model and state from `checkpoint`, which must come from the same settings."""
    saved = serialize.load(checkpoint, builder=lambda: copy.deepcopy(model))
    if saved.extra.get("config") != config.to_dict():
        raise PruneError(f"checkpoint {checkpoint} was made with other settings; "
                         "remove it or choose another checkpoint path")
    return saved.model, saved.extra


def iterative_prune(model: nn.Module, input_shape: tuple[int, ...], data: Dataset,
                    config: ScheduleConfig = ScheduleConfig(),
                    checkpoint: str | os.PathLike | None = None,
                    model_name: str | None = None, progress: bool = True) -> ScheduleResult:
    """Prune a trained `model` (left untouched) in rounds; returns the best model within budget."""
    if config.rounds < 1:
        raise PruneError(f"rounds must be at least 1, got {config.rounds}")
    output_layer = check_runs(model, input_shape)[-1]
    targets = layer_targets(model, config, output_layer)
    num_classes = data.num_classes
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    if checkpoint is not None and checkpoint.exists():
        current, state = resume(checkpoint, model, config)
    else:
        current = copy.deepcopy(model)
        baseline = evaluate(current, data.x_val, data.y_val, num_classes)
        state = {"config": config.to_dict(), "round": 0, "history": [], "stopped": False,
                 "baseline": baseline.to_dict()}
        if config.slimming_epochs and config.criterion == BNScale.name:
            train(current, data.x_train, data.y_train,
                  Recipe(epochs=config.slimming_epochs, lr=config.finetune.lr),
                  regularizer=bn_l1_penalty(1e-4), progress=progress)
    baseline = Metrics(**state["baseline"])
    rounds = tqdm(range(state["round"] + 1, config.rounds + 1), desc="prune", unit="round",
                  disable=not progress or state["stopped"], initial=state["round"],
                  total=config.rounds)
    for k in rounds:
        if state["stopped"]:
            break
        candidate = copy.deepcopy(current)
        prune_channels(candidate, input_shape, round_ratios(candidate, targets, k / config.rounds),
                       config.criterion, config.round_to, x=data.x_train, y=data.y_train)
        train(candidate, data.x_train, data.y_train, config.finetune, progress=progress)
        metrics = evaluate(candidate, data.x_val, data.y_val, num_classes)
        counts = stats.count(candidate, input_shape)
        scores = metrics.to_dict()
        del scores["confusion"]
        record = {"round": k, "fraction": k / config.rounds, "macs": counts.macs,
                  "params": counts.params, **scores}
        rounds.set_postfix(acc=f"{metrics.accuracy:.3f}", macs=counts.macs)
        if baseline.accuracy - metrics.accuracy > config.max_drop:
            state["history"].append({**record, "accepted": False})
            state["stopped"] = True
        else:
            state["history"].append({**record, "accepted": True})
            state["round"] = k
            current = candidate
        if checkpoint is not None:
            serialize.save(checkpoint, current, input_shape, model_name, state)
    return ScheduleResult(current, baseline, state["history"], state["stopped"],
                          compare(stats.count(model, input_shape), stats.count(current, input_shape)))
