"""Count multiply-accumulates and parameters of conv, depthwise conv and dense layers.

Parameters are those of the compute layers (weights and biases): the count of the deployed graph,
where BatchNorm is folded into the preceding layer. `total_params` also counts BN and the rest.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

COMPUTE_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Linear)


@dataclass(frozen=True)
class LayerStats:
    """Counts of one compute layer for one forward pass with batch 1."""

    name: str
    kind: str
    macs: int
    params: int
    output_shape: tuple[int, ...]


@dataclass
class ModelStats:
    """Per-layer counts and totals for a model."""

    layers: list[LayerStats] = field(default_factory=list)
    total_params: int = 0

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    def by_name(self) -> dict[str, LayerStats]:
        return {layer.name: layer for layer in self.layers}


def layer_kind(module: nn.Module) -> str:
    """'conv', 'depthwise' or 'linear'."""
    if isinstance(module, nn.Linear):
        return "linear"
    if module.groups > 1 and module.groups == module.in_channels:
        return "depthwise"
    return "conv"


def layer_macs(module: nn.Module, output: torch.Tensor) -> int:
    """MACs of one sample through `module`, given its output."""
    per_sample = output[0].numel()
    if isinstance(module, nn.Linear):
        return per_sample * module.in_features
    return per_sample * (module.in_channels // module.groups) * math.prod(module.kernel_size)


def count(model: nn.Module, input_shape: tuple[int, ...]) -> ModelStats:
    """Run one zero input of `input_shape` through `model` and count MACs/params per layer."""
    stats = ModelStats(total_params=sum(p.numel() for p in model.parameters()))
    hooks = []

    def record(name: str):
        def hook(module: nn.Module, _inputs, output: torch.Tensor) -> None:
            params = sum(p.numel() for p in module.parameters(recurse=False))
            stats.layers.append(LayerStats(name, layer_kind(module), layer_macs(module, output),
                                           params, tuple(output.shape[1:])))
        return hook

    for name, module in model.named_modules():
        if isinstance(module, COMPUTE_LAYERS):
            hooks.append(module.register_forward_hook(record(name)))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(input_shape))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return stats
