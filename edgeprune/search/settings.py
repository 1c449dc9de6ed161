"""The search's settings and defaults, read by the command line, `edgeprune.search` and the
candidate builder alike; importable without torch or Optuna (the command line reads them)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from edgeprune.profile.defaults import DEFAULT_DEVICE
from edgeprune.search.errors import SearchError

if TYPE_CHECKING:
    from edgeprune.models.train import Recipe

PRECISIONS = ("int8", "fp32")


@dataclass(frozen=True)
class Settings:
    """How every candidate is made and measured (stored with the study; must match on resume)."""

    device: str = DEFAULT_DEVICE
    precision: str = "int8"  # fp32: a fallback that measures the float model, labelled as such
    criterion: str = "l1"
    round_to: int = 4
    max_ratio: float = 0.8
    step: float = 0.1
    finetune_epochs: int = 60
    finetune_lr: float = 5e-3
    distill: float = 0.8  # weight of distillation from the unpruned model while finetuning
    calibration_samples: int = 300

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise SearchError(f"precision {self.precision!r}: use one of {', '.join(PRECISIONS)}")
        if not 0 < self.step <= self.max_ratio < 1:
            raise SearchError(f"need 0 < step ({self.step}) <= max ratio ({self.max_ratio}) < 1")

    @property
    def finetune(self) -> Recipe:
        """The finetuning recipe of every candidate."""
        from edgeprune.models.train import Recipe

        return Recipe(epochs=self.finetune_epochs, lr=self.finetune_lr, distill=self.distill)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RunDefaults:
    """The defaults of a search run that are not stored with the study (they may change on resume)."""

    trials: int = 20
    uniform: tuple[float, ...] = (0.0, 0.3, 0.5, 0.7)  # uniform-pruning candidates tried first
    sampler: str = "tpe"
    train_epochs: int = 30  # zoo models: training on their data before the search
    threads: int = 1  # torch threads while finetuning


SETTINGS = Settings()
RUN = RunDefaults()
