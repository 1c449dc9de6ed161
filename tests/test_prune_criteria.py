"""Each criterion ranks a constructed case correctly (lowest score = pruned first)."""
import numpy as np
import pytest
import torch
from torch import nn

from edgeprune.models.train import Recipe, train
from edgeprune.prune import criteria
from edgeprune.prune.errors import PruneError
from edgeprune.prune.structured import prune_channels, rank_channels

SHAPE = (1, 1, 6, 6)


def tiny(conv1: float = 1.0, conv2: float = 1.0) -> nn.Module:
    """conv(1->4) + BN + ReLU, conv(4->4) + ReLU, pooling, Linear(4->3); constant weights."""
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    with torch.no_grad():
        model[0].weight.fill_(conv1)
        model[3].weight.fill_(conv2)
        model[7].weight.copy_(torch.arange(12.0).reshape(3, 4) / 12)
    return model.eval()


@pytest.mark.parametrize("name", ["l1", "l2", "lamp"])
def test_magnitude_ranks_zeroed_filter_first(name):
    model = tiny()
    with torch.no_grad():
        model[0].weight[2] = 0
    scores = rank_channels(model, SHAPE, "0", name)
    assert scores.argmin().item() == 2
    assert (scores[[0, 1, 3]] > scores[2]).all()


def test_pruning_removes_the_zeroed_filter():
    model = tiny()
    with torch.no_grad():
        model[0].weight[2] = 0
    prune_channels(model, SHAPE, {"0": 0.25}, "l1")
    assert model[0].out_channels == 3
    assert (model[0].weight.flatten(1).abs().sum(1) > 0).all()


def test_bn_scale_ranks_small_gamma_first():
    model = tiny()
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([1.0, 0.01, 0.5, 2.0]))
    assert rank_channels(model, SHAPE, "0", "bn_scale").argsort().tolist() == [1, 2, 0, 3]


def test_fpgm_ranks_duplicated_filter_first():
    model = tiny()
    filters = torch.rand(4, 9, generator=torch.Generator().manual_seed(0))
    filters[3] = filters[0]
    with torch.no_grad():
        model[0].weight.copy_(filters.reshape(4, 1, 3, 3))
    assert set(rank_channels(model, SHAPE, "0", "fpgm").argsort()[:2].tolist()) == {0, 3}


def test_taylor_ranks_channel_without_effect_on_loss_first():
    model = tiny()
    with torch.no_grad():
        model[0].weight.copy_(torch.rand(4, 1, 3, 3, generator=torch.Generator().manual_seed(1)))
        model[3].weight[:, 1] = 0  # channel 1 never reaches the loss: zero gradient
    rng = np.random.default_rng(0)
    x = rng.random((16, 1, 6, 6), dtype=np.float32)
    y = rng.integers(0, 3, 16)
    scores = rank_channels(model, SHAPE, "0", criteria.Taylor(batches=2, batch_size=8), x, y)
    assert scores[1].item() == 0 and (scores[[0, 2, 3]] > 0).all()
    assert all(p.grad is None for p in model.parameters())  # gradients cleaned up


def test_taylor_needs_data():
    with pytest.raises(PruneError, match="needs data"):
        rank_channels(tiny(), SHAPE, "0", "taylor")


def test_random_is_seeded_and_varies_with_seed():
    a = rank_channels(tiny(), SHAPE, "0", criteria.Random(seed=1))
    b = rank_channels(tiny(), SHAPE, "0", criteria.Random(seed=1))
    c = rank_channels(tiny(), SHAPE, "0", criteria.Random(seed=2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_bn_l1_penalty_sums_scales():
    model = tiny()
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([1.0, -2.0, 0.5, 0.5]))
    assert criteria.bn_l1_penalty(0.1)(model).item() == pytest.approx(0.4)


def test_slimming_phase_shrinks_bn_scales():
    rng = np.random.default_rng(0)
    x = rng.random((64, 1, 6, 6), dtype=np.float32)
    y = rng.integers(0, 3, 64)

    def gamma_sum(regularizer):
        model = train(tiny(), x, y, Recipe(epochs=40, lr=2e-2, batch_size=16, weight_decay=0), regularizer)
        return model[1].weight.abs().sum().item()

    assert gamma_sum(criteria.bn_l1_penalty(0.5)) < 0.8 * gamma_sum(None)


def test_unknown_criterion():
    with pytest.raises(PruneError, match="unknown criterion 'l3'; known: l1, l2, taylor"):
        criteria.criterion("l3")
