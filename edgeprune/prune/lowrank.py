"""Low-rank factorisation of Linear and Conv2d layers by truncated SVD.

A layer W (out x in*k*k) becomes two: V_r (r x in*k*k, the original kernel, no bias) then
U_r S_r (out x r, 1x1 or dense, with the bias). The rank r is the smallest that keeps `energy`
of the squared singular values; layers are only replaced when that saves parameters.
"""
from __future__ import annotations

import torch
from torch import nn

from edgeprune.prune.errors import PruneError


def rank_for_energy(singular: torch.Tensor, energy: float) -> int:
    """Smallest rank whose singular values hold `energy` of the total squared sum."""
    share = torch.cumsum(singular ** 2, 0) / (singular ** 2).sum()
    return int(torch.searchsorted(share, torch.tensor(energy)).item()) + 1


def factorized(module: nn.Module, rank: int) -> nn.Sequential:
    """Two layers of inner width `rank` shaped like `module` (weights uninitialised)."""
    if isinstance(module, nn.Linear):
        return nn.Sequential(nn.Linear(module.in_features, rank, bias=False),
                             nn.Linear(rank, module.out_features, bias=module.bias is not None))
    return nn.Sequential(
        nn.Conv2d(module.in_channels, rank, module.kernel_size, stride=module.stride,
                  padding=module.padding, dilation=module.dilation, bias=False),
        nn.Conv2d(rank, module.out_channels, 1, bias=module.bias is not None))


def decompose(module: nn.Module, energy: float) -> nn.Sequential | None:
    """The factorised replacement of `module`, or None when it would not save parameters."""
    weight = module.weight.detach().flatten(1)
    u, s, vh = torch.linalg.svd(weight, full_matrices=False)
    rank = rank_for_energy(s, energy)
    if rank * sum(weight.shape) >= weight.numel():
        return None
    pair = factorized(module, rank)
    with torch.no_grad():
        pair[0].weight.copy_(vh[:rank].reshape(pair[0].weight.shape))
        pair[1].weight.copy_((u[:, :rank] * s[:rank]).reshape(pair[1].weight.shape))
        if module.bias is not None:
            pair[1].bias.copy_(module.bias)
    return pair


def replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    """Put `new` at dotted path `name` in `model`."""
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)


def low_rank(model: nn.Module, energy: float = 0.9,
             layers: list[str] | None = None) -> dict[str, int]:
    """Factorise Linear and (non-grouped) Conv2d layers in place; returns {layer name: rank}."""
    if not 0.0 < energy <= 1.0:
        raise PruneError(f"retained energy {energy} is outside (0, 1]")
    modules = dict(model.named_modules())
    names = layers if layers is not None else [
        n for n, m in modules.items()
        if isinstance(m, nn.Linear) or (isinstance(m, nn.Conv2d) and m.groups == 1)]
    unknown = [n for n in names if n not in modules]
    if unknown:
        raise PruneError(f"unknown layer(s) {unknown} for low-rank decomposition")
    ranks = {}
    for name in names:
        pair = decompose(modules[name], energy)
        if pair is not None:
            replace_module(model, name, pair)
            ranks[name] = pair[0].weight.shape[0]
    return ranks
