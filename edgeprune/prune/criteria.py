"""Channel importance criteria: a group of coupled channels in, one score per channel out.

Every criterion is a small `Criterion` subclass; lower scores are pruned first. Magnitude-style
criteria delegate to torch-pruning's importance classes, which already reduce over all layers of a
coupled group (conv outputs, BN, the next layer's inputs).
"""
from __future__ import annotations

from typing import Callable, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
import torch_pruning as tp
from torch import nn

from edgeprune.prune.errors import PruneError


class Criterion(tp.importance.Importance):
    """Scores the channels of a torch-pruning `Group`; `prepare` runs once before scoring."""

    name: ClassVar[str]

    def prepare(self, model: nn.Module, x: np.ndarray | None, y: np.ndarray | None) -> None:
        """Collect what scoring needs from data (default: nothing)."""

    def __call__(self, group: tp.dependency.Group) -> torch.Tensor | None:
        raise NotImplementedError


class Delegating(Criterion):
    """A criterion computed by the torch-pruning importance object that `make` returns."""

    make: ClassVar[Callable[[], tp.importance.Importance]]

    def __init__(self):
        self.inner = type(self).make()

    def __call__(self, group: tp.dependency.Group) -> torch.Tensor | None:
        return self.inner(group)


class L1(Delegating):
    """Mean L1 norm of a channel's weights over the coupled layers."""

    name = "l1"
    make = staticmethod(lambda: tp.importance.GroupMagnitudeImportance(p=1))


class L2(Delegating):
    """Mean squared L2 norm of a channel's weights over the coupled layers."""

    name = "l2"
    make = staticmethod(lambda: tp.importance.GroupMagnitudeImportance(p=2))


class LAMP(Delegating):
    """Layer-adaptive magnitude (Lee et al. 2021): L2 scores normalised by the larger ones."""

    name = "lamp"
    make = staticmethod(lambda: tp.importance.LAMPImportance(p=2))


class FPGM(Delegating):
    """Geometric-median redundancy (He et al. 2019): channels close to the others go first."""

    name = "fpgm"
    make = staticmethod(lambda: tp.importance.FPGMImportance(p=2))


class BNScale(Delegating):
    """|gamma| of the BatchNorm layers of the group (network slimming, Liu et al. 2017).

    Groups without BatchNorm are not scored and so not pruned. The schedule's `slimming_epochs`
    adds an L1-regularised training phase on the scales first (see `bn_l1_penalty`).
    """

    name = "bn_scale"
    make = tp.importance.BNScaleImportance


class Taylor(Delegating):
    """First-order Taylor |weight x gradient| of the loss (Molchanov et al. 2019), from data."""

    name = "taylor"
    make = tp.importance.GroupTaylorImportance

    def __init__(self, batches: int = 4, batch_size: int = 64):
        super().__init__()
        self.batches = batches
        self.batch_size = batch_size

    def prepare(self, model: nn.Module, x: np.ndarray | None, y: np.ndarray | None) -> None:
        if x is None or y is None:
            raise PruneError("the taylor criterion needs data (x, y) to compute gradients")
        model.zero_grad()
        was_training = model.training
        model.eval()
        try:
            for start in range(0, min(len(x), self.batches * self.batch_size), self.batch_size):
                inputs = torch.from_numpy(x[start:start + self.batch_size])
                labels = torch.from_numpy(y[start:start + self.batch_size])
                F.cross_entropy(model(inputs), labels).backward()
        finally:
            model.train(was_training)


class Random(Criterion):
    """Uniform random scores from a seeded generator: the baseline every criterion should beat."""

    name = "random"

    def __init__(self, seed: int = 0):
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, group: tp.dependency.Group) -> torch.Tensor:
        return torch.rand(len(group[0].idxs), generator=self.generator)


CRITERIA: dict[str, type[Criterion]] = {
    cls.name: cls for cls in (L1, L2, Taylor, Random, BNScale, FPGM, LAMP)}


def criterion(name: str, **options) -> Criterion:
    """The criterion called `name`, built with `options`."""
    try:
        cls = CRITERIA[name]
    except KeyError:
        raise PruneError(f"unknown criterion {name!r}; known: {', '.join(CRITERIA)}") from None
    return cls(**options)


def bn_l1_penalty(strength: float):
    """Training regulariser `strength * sum |gamma|` over all BatchNorm layers (slimming phase)."""

    def penalty(model: nn.Module) -> torch.Tensor:
        scales = [m.weight.abs().sum() for m in model.modules()
                  if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine]
        return strength * torch.stack(scales).sum() if scales else torch.zeros(())
    return penalty
