"""Model zoo: the digits CNN and the MLPerf Tiny reference architectures, built in torch.

Layer shapes follow the MLPerf Tiny training references (Keras, `use_bias=True`, BatchNorm after
every conv/dense where the reference has one). Keras "same" padding is asymmetric for even
strides; the symmetric torch padding used here gives the same output shapes and MAC counts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from edgeprune.errors import EdgepruneError

SEED = 0


class UnknownModelError(EdgepruneError):
    """A model name that the zoo does not know."""


def conv_bn_relu(cin: int, cout: int, kernel: int | tuple[int, int] = 3, stride: int = 1,
                 padding: int | tuple[int, int] = 1, groups: int = 1) -> nn.Sequential:
    """Conv2d (with bias, as the Keras references) + BatchNorm2d + ReLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, groups=groups),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    )


def depthwise_separable(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """3x3 depthwise conv + BN + ReLU, then 1x1 pointwise conv + BN + ReLU."""
    return nn.Sequential(
        conv_bn_relu(cin, cin, 3, stride=stride, padding=1, groups=cin),
        conv_bn_relu(cin, cout, 1, padding=0),
    )


def classifier_head(channels: int, classes: int) -> nn.Sequential:
    """Global average pooling, flatten and a dense layer."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, classes))


class ResidualBlock(nn.Module):
    """ResNet v1 basic block; a 1x1 strided conv shortcut when the shape changes (no BN on it)."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = conv_bn_relu(cin, cout, 3, stride=stride)
        self.conv2 = nn.Sequential(nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout))
        self.shortcut = (nn.Conv2d(cin, cout, 1, stride=stride)
                         if stride != 1 or cin != cout else nn.Identity())
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


def digits_cnn() -> nn.Module:
    """Small CNN for the 8x8 scikit-learn digits: 3 conv layers, global pooling, dense."""
    return nn.Sequential(
        conv_bn_relu(1, 16),
        conv_bn_relu(16, 32, stride=2),
        conv_bn_relu(32, 32),
        classifier_head(32, 10),
    )


def kws_dscnn() -> nn.Module:
    """MLPerf Tiny keyword spotting DS-CNN (input 49x10 MFCC, 12 classes)."""
    return nn.Sequential(
        conv_bn_relu(1, 64, (10, 4), stride=2, padding=(5, 1)),
        *[depthwise_separable(64, 64) for _ in range(4)],
        classifier_head(64, 12),
    )


def vww_mobilenet() -> nn.Module:
    """MLPerf Tiny visual wake words MobileNetV1 with width multiplier 0.25 (96x96 RGB, 2 classes)."""
    plan = [(8, 16, 1), (16, 32, 2), (32, 32, 1), (32, 64, 2), (64, 64, 1), (64, 128, 2),
            *[(128, 128, 1)] * 5, (128, 256, 2), (256, 256, 1)]
    return nn.Sequential(
        conv_bn_relu(3, 8, stride=2),
        *[depthwise_separable(cin, cout, stride) for cin, cout, stride in plan],
        classifier_head(256, 2),
    )


def ic_resnet8() -> nn.Module:
    """MLPerf Tiny image classification ResNet-8 (CIFAR-10 32x32 RGB, 10 classes)."""
    return nn.Sequential(
        conv_bn_relu(3, 16),
        ResidualBlock(16, 16),
        ResidualBlock(16, 32, stride=2),
        ResidualBlock(32, 64, stride=2),
        classifier_head(64, 10),
    )


def ad_autoencoder() -> nn.Module:
    """MLPerf Tiny anomaly detection dense autoencoder (640 -> 128x4 -> 8 -> 128x4 -> 640)."""
    widths = [640, 128, 128, 128, 128, 8, 128, 128, 128, 128]
    layers: list[nn.Module] = []
    for cin, cout in zip(widths, widths[1:]):
        layers += [nn.Linear(cin, cout), nn.BatchNorm1d(cout), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(128, 640))


@dataclass(frozen=True)
class ModelSpec:
    """How to build a zoo model and what it eats and produces."""

    builder: Callable[[], nn.Module]
    input_shape: tuple[int, ...]
    num_outputs: int
    source: str  # the architecture it reproduces


ZOO: dict[str, ModelSpec] = {
    "digits_cnn": ModelSpec(digits_cnn, (1, 1, 8, 8), 10, "3-conv CNN for scikit-learn digits"),
    "kws_dscnn": ModelSpec(kws_dscnn, (1, 1, 49, 10), 12, "MLPerf Tiny KWS DS-CNN"),
    "vww_mobilenet": ModelSpec(vww_mobilenet, (1, 3, 96, 96), 2, "MLPerf Tiny VWW MobileNetV1-0.25"),
    "ic_resnet8": ModelSpec(ic_resnet8, (1, 3, 32, 32), 10, "MLPerf Tiny IC ResNet-8"),
    "ad_autoencoder": ModelSpec(ad_autoencoder, (1, 640), 640, "MLPerf Tiny AD FC auto-encoder"),
}


def model_names() -> list[str]:
    """Names of all zoo models."""
    return sorted(ZOO)


def spec(name: str) -> ModelSpec:
    """The zoo entry for `name`; raises UnknownModelError listing the known names."""
    try:
        return ZOO[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r}; known models: {', '.join(model_names())}") from None


def build_model(name: str, seed: int = SEED) -> nn.Module:
    """Build zoo model `name` in eval mode with a deterministic initialisation."""
    builder = spec(name).builder
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = builder()
    return model.eval()


def input_shape(name: str) -> tuple[int, ...]:
    """Input shape of zoo model `name` with batch 1 (NCHW, or (1, features) for dense models)."""
    return spec(name).input_shape


def num_outputs(name: str) -> int:
    """Number of classes (or output features) of zoo model `name`."""
    return spec(name).num_outputs
