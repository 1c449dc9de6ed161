"""A short CPU training recipe: Adam, cosine learning rate, cross entropy, fixed seed."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

# Extra loss term computed from the model each step (e.g. an L1 penalty on BN scales).
Regularizer = Callable[[nn.Module], torch.Tensor]


@dataclass(frozen=True)
class Recipe:
    """Training hyper-parameters."""

    epochs: int = 30
    lr: float = 1e-2
    batch_size: int = 64
    weight_decay: float = 1e-4
    seed: int = 0


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, recipe: Recipe = Recipe(),
          regularizer: Regularizer | None = None, progress: bool = False) -> nn.Module:
    """Train `model` in place on arrays `x`, `y` with `recipe`; returns it in eval mode."""
    generator = torch.Generator().manual_seed(recipe.seed)
    inputs, labels = torch.from_numpy(x), torch.from_numpy(y)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr,
                                 weight_decay=recipe.weight_decay)
    steps_per_epoch = -(-len(x) // recipe.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=recipe.lr, total_steps=recipe.epochs * steps_per_epoch)
    model.train()
    for _ in tqdm(range(recipe.epochs), desc="train", unit="epoch", disable=not progress,
                  leave=False):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), recipe.batch_size):
            batch = order[start:start + recipe.batch_size]
            loss = F.cross_entropy(model(inputs[batch]), labels[batch])
            if regularizer is not None:
                loss = loss + regularizer(model)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return model.eval()
