"""The int8 kernels for cores with the DSP extension (compile/dsp/), table-driven on QEMU.

Each case is a small model whose layers cover one corner of the kernels: odd and even channel
counts (GEMM tiles of 2 with a one-channel tail), 1 to 3 input channels, strides 1 and 2,
padding, dilation, non-square kernels, a depthwise multiplier of 2, depthwise kernels that are
not 3 wide or are dilated, pixel counts that leave a single pixel, and dense layers with reduction lengths that
are not multiples of 4. The device (mps2-an386, Cortex-M4) must equal the portable kernels of a
host build of the same integer graph bit for bit, for random and saturating inputs."""
import numpy as np
import pytest
import torch
from torch import nn

from edgeprune.cli import main
from edgeprune.compile.api import compile_model
from edgeprune.compile.host import host_outputs
from edgeprune.compile.int8 import has_dsp
from edgeprune.profile.run import run
from edgeprune.quantize import quantize
from edgeprune.targets import load_target

CASES = {
    "regular": ((1, 1, 9, 11), lambda: nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(),                      # 1 input channel, odd output channels
        nn.Conv2d(3, 5, 3, stride=2, padding=1), nn.ReLU(),            # strided, 3 input channels
        nn.Conv2d(5, 4, 3, padding=2, dilation=2), nn.ReLU6(),         # dilated
        nn.Conv2d(4, 7, (2, 3), padding=(0, 1)),                       # non-square, 15 pixels (odd)
        nn.Flatten(), nn.Linear(7 * 4 * 6, 9))),                       # dense, K = 168, 9 outputs
    "depthwise": ((1, 2, 8, 7), lambda: nn.Sequential(
        nn.Conv2d(2, 6, 1), nn.ReLU(),                                 # pointwise, K = 2
        nn.Conv2d(6, 12, 3, padding=1, groups=6), nn.ReLU(),           # depthwise, multiplier 2
        nn.Conv2d(12, 12, 3, stride=2, padding=1, groups=12),          # depthwise, stride 2
        nn.Conv2d(12, 12, (3, 5), padding=(1, 2), groups=12), nn.ReLU(),  # depthwise, 5 wide
        nn.Conv2d(12, 12, 3, padding=2, dilation=2, groups=12),       # depthwise, dilated
        nn.Flatten(), nn.Linear(12 * 4 * 4, 10), nn.ReLU(),             # dense
        nn.Linear(10, 5))),                                            # dense, K = 10 (not a multiple of 4)
}


@pytest.fixture(scope="module", params=[(name, "auto") for name in sorted(CASES)] + [("regular", "int8"), ("depthwise", "int16")],
                ids=lambda p: "-".join(p))
def case(request, tmp_path_factory):
    """A case compiled with the default weight layouts ("auto") or all weights int16 or int8."""
    name, weights = request.param
    shape, build = CASES[name]
    torch.manual_seed(0)
    module = build().eval()
    folder = tmp_path_factory.mktemp(name)
    calibration = np.random.default_rng(1).normal(size=(64, *shape[1:])).astype(np.float32)
    quantized = quantize(module, calibration, folder / "m.int8.onnx", input_shape=shape, write_report=False).output
    return compile_model(quantized, "mps2-an386", folder / "out", weights=weights)


def test_the_m4_has_the_dsp_extension_and_the_m3_has_not():
    assert has_dsp(load_target("mps2-an386").llvm_target())
    assert not has_dsp(load_target("mps2-an385").llvm_target())


def test_every_convolution_and_dense_layer_runs_a_dsp_kernel(case):
    kernels = [step["kernel"] for step in case.manifest["steps"]]
    assert [k for k in kernels if k.startswith(("conv2d", "depthwise", "dense"))]
    assert all("_dsp" in k for k in kernels if k.startswith(("conv2d", "depthwise", "dense")))


@pytest.mark.qemu
def test_dsp_kernels_equal_the_portable_kernels_bit_for_bit(case):
    shape = case.manifest["inputs"][0]["shape"]
    rng = np.random.default_rng(7)
    inputs = [rng.integers(-128, 128, shape), np.full(shape, 127), np.full(shape, -128),
              np.where(rng.random(shape) < 0.5, -128, 127)]
    for x in (x.astype(np.int8) for x in inputs):
        device = run(case, [x]).device.outputs[0]
        assert np.array_equal(device, host_outputs(case, [x])[0])
    assert len(np.unique(run(case, [inputs[0].astype(np.int8)]).device.outputs[0])) > 1  # not saturated


@pytest.mark.qemu
def test_run_names_each_layer_by_what_it_computes(case, capsys):
    assert main(["run", str(case.path)]) == 0
    printed = capsys.readouterr().out
    layers = [step["layer"]["description"] for step in case.manifest["steps"] if "layer" in step]
    assert layers and all(layer in printed for layer in layers)  # e.g. "conv 3x3 s2 3->5 @5x6"
