"""One-shot unstructured magnitude pruning, low-rank factorisation, block removal, save/load."""
import pickle

import pytest
import torch
from torch import nn

from edgeprune.models import data, zoo
from edgeprune.models.train import Recipe
from edgeprune.prune import serialize
from edgeprune.prune.blocks import remove_blocks, removable_blocks
from edgeprune.prune.errors import PruneError
from edgeprune.prune.lowrank import low_rank
from edgeprune.prune.schedule import ScheduleConfig, iterative_prune
from edgeprune.prune.steps import BlockStep
from edgeprune.prune.structured import prune_channels
from edgeprune.prune.unstructured import make_permanent, prune_weights, sparsity_report


def one_shot(model, sparsity, scope="layer"):
    prune_weights(model, sparsity, scope)
    make_permanent(model)
    return sparsity_report(model)


def test_layerwise_sparsity_is_per_layer_and_permanent():
    model = zoo.build_model("digits_cnn")
    report = one_shot(model, 0.5, "layer")
    assert all(abs(layer.sparsity - 0.5) < 0.01 for layer in report.layers)
    assert not any("mask" in key or "orig" in key for key in model.state_dict())
    assert (model[1][0].weight == 0).float().mean().item() == pytest.approx(0.5, abs=0.01)


def test_global_sparsity_uses_one_threshold():
    model = zoo.build_model("digits_cnn")
    with torch.no_grad():
        model[0][0].weight.mul_(100)  # the first layer now holds all large weights
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    original = torch.cat([m.weight.detach().abs().flatten() for m in layers])
    report = one_shot(model, 0.5, "global")
    assert report.sparsity == pytest.approx(0.5, abs=0.01)
    assert report.layers[0].sparsity == 0.0
    kept = torch.cat([m.weight.detach().flatten() for m in layers]) != 0
    assert original[kept].min() >= original[~kept].max()


def test_bad_sparsity_and_scope():
    with pytest.raises(PruneError, match="outside"):
        one_shot(zoo.build_model("digits_cnn"), 1.0)
    with pytest.raises(PruneError, match="unknown scope"):
        one_shot(zoo.build_model("digits_cnn"), 0.5, "block")


def test_low_rank_recovers_rank_two_linear():
    model = nn.Sequential(nn.Linear(32, 24), nn.ReLU(), nn.Linear(24, 5))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        model[0].weight.copy_(torch.randn(24, 2, generator=g) @ torch.randn(2, 32, generator=g))
    x = torch.randn(8, 32, generator=g)
    expected = model(x)
    ranks = low_rank(model, energy=0.999)
    assert ranks == {"0": 2}  # the full-rank 24->5 layer would not shrink
    assert [m.weight.shape for m in model[0]] == [(2, 32), (24, 2)]
    torch.testing.assert_close(model(x), expected, atol=1e-4, rtol=1e-4)


def test_low_rank_conv_keeps_shapes():
    model = zoo.build_model("ic_resnet8")
    x = torch.rand(1, 3, 32, 32)
    ranks = low_rank(model, energy=0.5)
    assert ranks and model(x).shape == (1, 10)
    with pytest.raises(PruneError, match="energy"):
        low_rank(model, energy=0.0)


def test_candidates_are_shape_preserving_blocks():
    assert removable_blocks(zoo.build_model("kws_dscnn"), (1, 1, 49, 10)) == ["1", "2", "3", "4"]
    assert removable_blocks(zoo.build_model("ic_resnet8"), (1, 3, 32, 32)) == [
        "1", "2.conv2", "3.conv2"]


def test_removes_the_block_that_does_nothing_first():
    model = zoo.build_model("ic_resnet8")
    with torch.no_grad():  # residual branch of block 1 contributes zero: relu(0 + x) == x
        model[1].conv2[1].weight.zero_()
        model[1].conv2[1].bias.zero_()
    assert remove_blocks(model, (1, 3, 32, 32), 1) == ["1"]
    assert isinstance(model[1], nn.Identity)


def test_too_many_blocks():
    with pytest.raises(PruneError, match="only 1 removable"):
        remove_blocks(zoo.build_model("digits_cnn"), (1, 1, 8, 8), 2)


def test_save_load_replays_every_change(tmp_path):
    model = zoo.build_model("ic_resnet8")
    shape = (1, 3, 32, 32)
    prune_channels(model, shape, 0.5, round_to=4)
    remove_blocks(model, shape, 1)
    low_rank(model, energy=0.6)
    x = torch.rand(2, 3, 32, 32)
    expected = model(x)
    serialize.save(tmp_path / "m.pt", model, shape, "ic_resnet8", {"note": "x"})
    saved = serialize.load(tmp_path / "m.pt")
    assert (saved.model_name, saved.input_shape, saved.extra) == ("ic_resnet8", shape, {"note": "x"})
    torch.testing.assert_close(saved.model(x), expected)


class Evil:
    def __reduce__(self):
        return (print, ("unpickled!",))


def test_load_refuses_arbitrary_objects(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"format": serialize.FORMAT, "payload": Evil()}, path)
    with pytest.raises(PruneError, match="not a model saved by edgeprune"):
        serialize.load(path)
    assert "unpickled!" not in capsys.readouterr().out
    path.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(PruneError, match="not a model saved by edgeprune"):
        serialize.load(path)


def test_load_other_architecture(tmp_path):
    model = zoo.build_model("digits_cnn")
    serialize.save(tmp_path / "m.pt", model, (1, 1, 8, 8), "digits_cnn")
    with pytest.raises(PruneError, match="another architecture"):
        serialize.load(tmp_path / "m.pt", builder=lambda: zoo.build_model("ic_resnet8"))


@pytest.mark.slow  # 13 to 44 s measured (machine load): removal costs on the 49x10 KWS inputs
def test_blocks_spread_over_rounds_without_finetuning():
    shape = (1, 1, 49, 10)
    config = ScheduleConfig(rounds=2, max_drop=1.0, finetune=Recipe(epochs=0))
    result = iterative_prune(zoo.build_model("kws_dscnn"), shape, data.digits(shape), BlockStep(3), config,
                             progress=False)
    assert [len(r["removed"]) for r in result.history] == [2, 1]
    assert sum(isinstance(m, nn.Identity) for m in result.model) == 3
