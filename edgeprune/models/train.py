"""A short CPU training recipe: Adam, one-cycle learning rate, cross entropy (optionally distilled
from a teacher model) or, for auto-encoders, reconstruction error; fixed seed."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from edgeprune.errors import EdgepruneError

# Extra loss term computed from the model each step (e.g. an L1 penalty on BN scales).
Regularizer = Callable[[nn.Module], torch.Tensor]
# Called with the step index (0, 1, ...) before each batch, e.g. to update pruning masks.
StepHook = Callable[[int], None]
LOSSES = ("cross_entropy", "reconstruction")


@dataclass(frozen=True)
class Recipe:
    """Training hyper-parameters."""

    epochs: int = 30
    lr: float = 1e-2
    batch_size: int = 64
    weight_decay: float = 1e-4
    seed: int = 0
    distill: float = 0.0  # weight of the distillation term (needs a teacher), 1 - it for labels
    temperature: float = 4.0  # softens teacher and student logits in the distillation term
    loss: str = "cross_entropy"  # or "reconstruction": mean squared error to the input (labels unused)

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise EdgepruneError(f"unknown loss {self.loss!r}; use one of {', '.join(LOSSES)}")


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch's intra-op thread count set to `count` inside the block, restored after it."""
    if count < 1:
        raise EdgepruneError(f"threads must be at least 1, got {count}")
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def distillation_loss(logits: torch.Tensor, teacher_logits: torch.Tensor,
                      temperature: float) -> torch.Tensor:
    """Hinton et al.'s soft-target loss: KL(teacher || student) at `temperature`, scaled by T^2
    so its gradients keep the size of the cross entropy's."""
    return temperature ** 2 * F.kl_div(F.log_softmax(logits / temperature, dim=1),
                                       F.softmax(teacher_logits / temperature, dim=1),
                                       reduction="batchmean")


def step_count(recipe: Recipe, samples: int) -> int:
    """Optimizer steps that `train` takes on `samples` examples."""
    return recipe.epochs * -(-samples // recipe.batch_size)


def batch_loss(recipe: Recipe, outputs: torch.Tensor, inputs: torch.Tensor, labels: torch.Tensor,
               soft: torch.Tensor | None) -> torch.Tensor:
    """The recipe's loss on one batch: cross entropy on labels (mixed with distillation from the
    teacher's `soft` outputs), or reconstruction error (mixed with matching the teacher's outputs)."""
    if recipe.loss == "reconstruction":
        loss = F.mse_loss(outputs, inputs.reshape(outputs.shape))
        teacher_term = None if soft is None else F.mse_loss(outputs, soft)
    else:
        loss = F.cross_entropy(outputs, labels)
        teacher_term = None if soft is None else distillation_loss(outputs, soft, recipe.temperature)
    if teacher_term is None:
        return loss
    return (1 - recipe.distill) * loss + recipe.distill * teacher_term


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, recipe: Recipe = Recipe(),
          regularizer: Regularizer | None = None, progress: bool = False,
          teacher: nn.Module | None = None, on_step: StepHook | None = None) -> nn.Module:
    """Train `model` in place on arrays `x`, `y` (unused by the reconstruction loss) with `recipe`;
    returns it in eval mode. With `recipe.distill` > 0 the loss mixes in the outputs of `teacher`
    (knowledge distillation, e.g. from the unpruned model while finetuning a pruned one).
    `on_step(step)` runs before each batch (see `step_count`)."""
    if recipe.distill and teacher is None:
        raise EdgepruneError("recipe.distill > 0 needs a teacher model")
    generator = torch.Generator().manual_seed(recipe.seed)
    inputs, labels = torch.from_numpy(x), torch.from_numpy(y)
    soft = None
    if recipe.distill:
        with torch.no_grad():
            soft = teacher.eval()(inputs)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr,
                                 weight_decay=recipe.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=recipe.lr, total_steps=step_count(recipe, len(x)))
    step = 0
    model.train()
    for _ in tqdm(range(recipe.epochs), desc="train", unit="epoch", disable=not progress,
                  leave=False):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), recipe.batch_size):
            batch = order[start:start + recipe.batch_size]
            if on_step is not None:
                on_step(step)
            step += 1
            outputs = model(inputs[batch])
            loss = batch_loss(recipe, outputs, inputs[batch], labels[batch],
                              None if soft is None else soft[batch])
            if regularizer is not None:
                loss = loss + regularizer(model)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return model.eval()
