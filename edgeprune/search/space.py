"""The search space: one discretized channel-pruning ratio per prunable group of a model."""
from __future__ import annotations

import optuna
from torch import nn

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
