"""Structured pruning on residual, concat and depthwise graphs; ratios, rounding, bad input."""
import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from edgeprune.models import export, stats, zoo
from edgeprune.prune.errors import PruneError
from edgeprune.prune.structured import prune_channels


class ConcatNet(nn.Module):
    """Two conv branches concatenated on channels, then a conv and a classifier."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.left = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.right = nn.Sequential(nn.Conv2d(8, 12, 1), nn.ReLU())
        self.mix = nn.Sequential(nn.Conv2d(20, 16, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 5))

    def forward(self, x):
        x = self.stem(x)
        return self.head(self.mix(torch.cat([self.left(x), self.right(x)], 1)))


def onnx_matches_torch(model, shape, path):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = model.eval()(x).numpy()
    session = ort.InferenceSession(str(export.to_onnx(model, shape, path)))
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    return expected


def channel_counts(model):
    return [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]


@pytest.mark.parametrize("name, shape, build", [
    ("residual", (1, 3, 32, 32), lambda: zoo.build_model("ic_resnet8")),
    ("depthwise", (1, 1, 49, 10), lambda: zoo.build_model("kws_dscnn")),
    ("concat", (1, 1, 8, 8), lambda: ConcatNet().eval()),
])
def test_pruned_graph_runs_and_exports(name, shape, build, tmp_path):
    model = build()
    classes = model(torch.zeros(shape)).shape
    report = prune_channels(model, shape, 0.5, "l1", round_to=4)
    assert report.macs_after < 0.6 * report.macs_before
    assert report.macs_after == stats.count(model, shape).macs
    assert all(c % 4 == 0 for c in channel_counts(model)), channel_counts(model)
    out = onnx_matches_torch(model, shape, tmp_path / f"{name}.onnx")
    assert out.shape == tuple(classes)  # the classifier keeps its outputs


def test_depthwise_follows_its_producer():
    model = zoo.build_model("kws_dscnn")
    prune_channels(model, (1, 1, 49, 10), 0.5)
    for block in list(model)[1:5]:
        depthwise = block[0][0]
        assert depthwise.groups == depthwise.in_channels == depthwise.out_channels == 32


def test_residual_add_keeps_both_sides_equal():
    model = zoo.build_model("ic_resnet8")
    prune_channels(model, (1, 3, 32, 32), {"2.conv2.0": 0.5})
    block = model[2]
    assert block.conv2[0].out_channels == block.shortcut.out_channels == 16
    assert block.conv1[0].out_channels == 32  # not asked, not coupled: untouched
    assert model[3].conv1[0].in_channels == 16


def test_per_layer_ratios_only_touch_named_layers():
    model = zoo.build_model("digits_cnn")
    report = prune_channels(model, (1, 1, 8, 8), {"1.0": 0.25})
    changed = {c.name: (c.channels_before, c.channels_after) for c in report.layers
               if c.channels_before != c.channels_after or c.macs_before != c.macs_after}
    assert changed == {"1.0": (32, 24), "2.0": (32, 32)}  # 2.0 only loses input channels


@pytest.mark.parametrize("ratio, round_to, expected", [
    (0.8, 4, [4, 8, 8]),  # 3.2 and 6.4 kept: the nearest multiples, none pruned away entirely
    (0.1, 4, [16, 28, 28]),  # 14.4 -> 16: the first layer stays whole rather than losing 4
    (0.8, 1, [3, 6, 6]),
    (0.2, 1, [12, 25, 25]),
])
def test_channels_kept_round_to_the_nearest_multiple(ratio, round_to, expected):
    model = zoo.build_model("digits_cnn")
    prune_channels(model, (1, 1, 8, 8), ratio, round_to=round_to)
    assert channel_counts(model) == expected


@pytest.mark.parametrize("ratio", [1.0, -0.1, 1.5])
def test_ratio_outside_range(ratio):
    with pytest.raises(PruneError, match=r"outside \[0, 1\)"):
        prune_channels(zoo.build_model("digits_cnn"), (1, 1, 8, 8), ratio)


def test_unknown_layer_lists_prunable_layers():
    with pytest.raises(PruneError, match=r"unknown layer\(s\) \['conv9'\].*1\.0, 2\.0"):
        prune_channels(zoo.build_model("digits_cnn"), (1, 1, 8, 8), {"conv9": 0.5})


class DictOutput(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)

    def forward(self, x):
        return {"logits": self.conv(x)}


def test_untraceable_models():
    with pytest.raises(PruneError, match="cannot be traced.*returned dict"):
        prune_channels(DictOutput(), (1, 1, 8, 8), 0.5)
    with pytest.raises(PruneError, match=r"cannot be traced: forward on input shape \(1, 3, 8, 8\)"):
        prune_channels(zoo.build_model("digits_cnn"), (1, 3, 8, 8), 0.5)
