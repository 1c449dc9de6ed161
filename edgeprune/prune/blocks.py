"""Layer/block removal: drop the blocks whose removal changes the model least.

Candidates are the outermost sub-modules holding a conv or linear layer whose output shape equals their input
shape (residual blocks, stride-1 same-width layers); removing one replaces it with Identity. A
candidate's importance is the loss increase on (x, y) when it is removed, or without labels the
relative change of the model output.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgeprune.models.stats import COMPUTE_LAYERS
from edgeprune.prune.errors import PruneError
from edgeprune.prune.lowrank import replace_module


def io_shapes(model: nn.Module, x: torch.Tensor) -> dict[str, tuple[tuple, tuple]]:
    """(input shape, output shape) of every named sub-module that takes and returns one tensor."""
    shapes: dict[str, tuple[tuple, tuple]] = {}

    def record(name: str):
        def hook(_module, inputs, output):
            if len(inputs) == 1 and isinstance(output, torch.Tensor):
                shapes[name] = (tuple(inputs[0].shape), tuple(output.shape))
        return hook

    hooks = [m.register_forward_hook(record(n)) for n, m in model.named_modules() if n]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return shapes


def removable_blocks(model: nn.Module, input_shape: tuple[int, ...]) -> list[str]:
    """Outermost sub-modules with a conv/linear layer whose output shape equals their input's."""
    shapes = io_shapes(model, torch.zeros(input_shape))
    found: list[str] = []
    for name, module in model.named_modules():
        inside_found = any(name.startswith(f"{block}.") for block in found)
        same = name in shapes and shapes[name][0] == shapes[name][1]
        computes = any(isinstance(m, COMPUTE_LAYERS) for m in module.modules())
        if same and not inside_found and computes:
            found.append(name)
    return found


def removal_cost(model: nn.Module, name: str, x: torch.Tensor, y: torch.Tensor | None) -> float:
    """How much worse the model gets on x (and y) with block `name` replaced by Identity."""
    block = model.get_submodule(name)
    with torch.no_grad():
        reference = model(x)
        replace_module(model, name, nn.Identity())
        try:
            changed = model(x)
        finally:
            replace_module(model, name, block)
    if y is not None:
        return float(F.cross_entropy(changed, y) - F.cross_entropy(reference, y))
    return float((changed - reference).norm() / reference.norm().clamp_min(1e-12))


def remove_blocks(model: nn.Module, input_shape: tuple[int, ...], count: int,
                  x: np.ndarray | None = None, y: np.ndarray | None = None) -> list[str]:
    """Greedily remove the `count` least important blocks in place; returns their names."""
    was_training = model.training
    model.eval()
    inputs = (torch.from_numpy(x) if x is not None
              else torch.rand((32, *input_shape[1:]), generator=torch.Generator().manual_seed(0)))
    labels = torch.from_numpy(y) if y is not None else None
    removed: list[str] = []
    try:
        for _ in range(count):
            candidates = removable_blocks(model, input_shape)
            if not candidates:
                raise PruneError(f"only {len(removed)} removable block(s), {count} requested")
            cheapest = min(candidates, key=lambda n: removal_cost(model, n, inputs, labels))
            replace_module(model, cheapest, nn.Identity())
            removed.append(cheapest)
    finally:
        model.train(was_training)
    return removed
