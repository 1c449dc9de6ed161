"""The training recipe: distillation makes the student follow the teacher, not the labels."""
import numpy as np
import pytest
import torch
from torch import nn

from edgeprune.errors import EdgepruneError
from edgeprune.models import data
from edgeprune.models.train import Recipe, torch_threads, train

DIGITS = data.digits((1, 64))


def agreement(model: nn.Module, labels: np.ndarray) -> float:
    with torch.no_grad():
        return float((model(torch.from_numpy(DIGITS.x_val)).argmax(1).numpy() == labels).mean())


def student() -> nn.Module:
    torch.manual_seed(1)
    return nn.Linear(64, 10)


def test_distillation_follows_the_teacher():
    teacher = train(student(), DIGITS.x_train, (DIGITS.y_train + 1) % 10, Recipe(epochs=20))
    taught = teacher(torch.from_numpy(DIGITS.x_val)).argmax(1).numpy()
    assert agreement(teacher, taught) == 1.0 and agreement(teacher, DIGITS.y_val) < 0.2
    recipe = Recipe(epochs=20, distill=1.0)
    distilled = train(student(), DIGITS.x_train, DIGITS.y_train, recipe, teacher=teacher)
    assert agreement(distilled, taught) > 0.9  # the labels carry no weight at distill=1
    plain = train(student(), DIGITS.x_train, DIGITS.y_train, Recipe(epochs=20, distill=0.0),
                  teacher=teacher)
    assert agreement(plain, DIGITS.y_val) > 0.9  # distill=0: the teacher is ignored


def test_distillation_needs_a_teacher():
    with pytest.raises(EdgepruneError, match="needs a teacher"):
        train(student(), DIGITS.x_train, DIGITS.y_train, Recipe(epochs=1, distill=0.5))


def test_torch_threads_are_set_inside_the_block_and_restored_after_it():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError), torch_threads(before + 1):
        assert torch.get_num_threads() == before + 1
        raise RuntimeError("interrupted")
    assert torch.get_num_threads() == before
    with pytest.raises(EdgepruneError, match="threads must be at least 1, got 0"):
        with torch_threads(0):
            pass
