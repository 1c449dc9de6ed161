"""Round steps of the schedule for structured channels, block removal and low rank.

Channels: round k of N removes channels until each layer has lost k/N of its target ratio (counted
from the original width, so rounding does not compound). Blocks: round k removes blocks until
k/N of `blocks` are gone. Low rank factorises once (a factor is not factorised again).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

from torch import nn

from edgeprune.models.train import Recipe
from edgeprune.prune.blocks import remove_blocks
from edgeprune.prune.criteria import CRITERIA, BNScale, bn_l1_penalty
from edgeprune.prune.errors import PruneError
from edgeprune.prune.lowrank import low_rank
from edgeprune.prune.schedule import Round, RoundStep
from edgeprune.prune.structured import (Ratios, check_ratio, check_runs, layer_by_name,
                                        prune_channels, prunable_layers)
from edgeprune.task import Task


def finetune(model: nn.Module, at: Round, hooks: dict) -> None:
    """Finetune `model` for the round's recipe with the task's finetune (nothing with zero epochs)."""
    at.task.tune(model, at.finetune, progress=at.progress, **hooks)


def channels_of(module: nn.Module) -> int:
    return module.out_features if isinstance(module, nn.Linear) else module.out_channels


@dataclass(frozen=True)
class ChannelStep(RoundStep):
    """Structured channel pruning by `criterion` to per-layer `ratios`."""

    ratios: Ratios = 0.5
    criterion: str = "l1"
    round_to: int = 1
    ignored: tuple[str, ...] = ()
    slimming_epochs: int = 0

    name = "channels"

    def __post_init__(self):
        if self.criterion not in CRITERIA:
            raise PruneError(f"the channels method's criteria are {', '.join(sorted(CRITERIA))}; "
                             f"got {self.criterion!r}")
        ratios = self.ratios.items() if isinstance(self.ratios, Mapping) else [("the model", self.ratios)]
        for name, ratio in ratios:
            check_ratio(name, ratio)
        if self.slimming_epochs and self.criterion != BNScale.name:
            raise PruneError(f"--slimming-epochs trains the BatchNorm scales for --criterion {BNScale.name} "
                             f"only, not for {self.criterion!r}")

    def settings(self) -> dict:
        d = asdict(self)
        d["ratios"] = dict(self.ratios) if isinstance(self.ratios, Mapping) else self.ratios
        d["ignored"] = list(self.ignored)
        return d

    def targets(self, original: nn.Module, input_shape: tuple[int, ...]) -> dict[str, tuple[int, float]]:
        """{layer name: (original channels, final ratio)} for the layers this step prunes."""
        output_layer = check_runs(original, input_shape)[-1]
        if isinstance(self.ratios, Mapping):
            layer_by_name(original, self.ratios)
            wanted = {name: check_ratio(name, r) for name, r in self.ratios.items()}
        else:
            ratio = check_ratio("the model", self.ratios)
            layer_by_name(original, self.ignored)
            wanted = {name: ratio for name, m in prunable_layers(original).items()
                      if m is not output_layer and name not in self.ignored}
        modules = dict(original.named_modules())
        return {name: (channels_of(modules[name]), r) for name, r in wanted.items()}

    def prepare(self, model: nn.Module, task: Task, recipe: Recipe, progress: bool) -> None:
        if self.slimming_epochs and self.criterion == BNScale.name:
            task.tune(model, Recipe(epochs=self.slimming_epochs, lr=recipe.lr),
                      progress=progress, regularizer=bn_l1_penalty(1e-4))

    def run(self, model: nn.Module, at: Round) -> dict:
        modules = dict(model.named_modules())
        ratios = {}
        for name, (original, ratio) in self.targets(at.original, at.input_shape).items():
            current = channels_of(modules[name])
            keep = int(original * (1 - ratio * at.fraction))
            # torch-pruning keeps int(current * (1 - r)) channels; the margin stops float round-down.
            ratios[name] = max(0.0, (current - keep) / current - 1e-9) if keep < current else 0.0
        prune_channels(model, at.input_shape, ratios, self.criterion, self.round_to,
                       x=at.data.x_train, y=at.data.y_train)
        finetune(model, at, {})
        return {}


@dataclass(frozen=True)
class BlockStep(RoundStep):
    """Removal of the `blocks` least important blocks (see `remove_blocks`), spread over the rounds."""

    blocks: int = 1

    name = "blocks"

    def __post_init__(self):
        if self.blocks < 1:
            raise PruneError(f"--blocks must be at least 1, got {self.blocks}")

    @property
    def max_rounds(self) -> int:
        return self.blocks  # each round removes at least one block

    def run(self, model: nn.Module, at: Round) -> dict:
        now = round(self.blocks * at.fraction) - round(self.blocks * at.done)
        removed = remove_blocks(model, at.input_shape, now, at.data.x_val, at.data.y_val)
        finetune(model, at, {})
        return {"removed": removed}


@dataclass(frozen=True)
class LowRankStep(RoundStep):
    """Low-rank factorisation keeping `energy` of each layer's SVD energy, in one round."""

    energy: float = 0.9

    name = "lowrank"
    max_rounds = 1

    def run(self, model: nn.Module, at: Round) -> dict:
        ranks = low_rank(model, self.energy)
        finetune(model, at, {})
        return {"ranks": ranks}
