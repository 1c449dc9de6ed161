"""The search space: one discretized channel-pruning ratio per prunable group of a model."""
from __future__ import annotations

import hashlib
import json

import optuna
from torch import nn

from edgeprune.prune import serialize
from edgeprune.prune.structured import check_runs, prunable_layers

PREFIX = "ratio:"


def groups(model: nn.Module, input_shape: tuple[int, ...]) -> list[str]:
    """Names of the prunable conv/linear layers in execution order, without the output layer
    (depthwise convs follow their producer; coupled layers follow the group's first layer)."""
    names = {module: name for name, module in prunable_layers(model).items()}
    order = [names[m] for m in check_runs(model, input_shape) if m in names]
    return list(dict.fromkeys(order[:-1]))


def grid(max_ratio: float, step: float) -> list[float]:
    """The ratios a group can take: 0, step, 2*step, ... up to max_ratio."""
    return [round(i * step, 6) for i in range(int(round(max_ratio / step)) + 1)]


def suggest(trial: optuna.Trial, names: list[str], max_ratio: float,
            step: float) -> dict[str, float]:
    """One ratio per group from the trial's sampler."""
    return {name: trial.suggest_float(PREFIX + name, 0.0, max_ratio, step=step)
            for name in names}


def uniform(names: list[str], ratio: float) -> dict[str, float]:
    """Trial parameters pruning every group by `ratio` (the baseline / warm start)."""
    return {PREFIX + name: ratio for name in names}


def ratios(params: dict[str, float]) -> dict[str, float]:
    """Layer name -> ratio from a trial's parameters."""
    return {key[len(PREFIX):]: value for key, value in params.items() if key.startswith(PREFIX)}


def architecture_hash(model: nn.Module, input_shape: tuple[int, ...], **context: str) -> str:
    """SHA-256 of the model's layer shapes (not weights), its input shape and `context`."""
    text = json.dumps({"architecture": serialize.architecture(model),
                       "input_shape": list(input_shape), **context}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()
