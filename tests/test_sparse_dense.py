"""Block-sparse and 2:4 int8 dense layers (compile/dsp/sparse_dense.py, nm_dense.py) and the
pruning patterns whose zeros they skip (prune/unstructured.py: --pattern block4, 2:4).

The kernel case is a small model of odd sizes: a reduction of 1030 (258 blocks: int16 block
indices, a tail block of 2), one of 13 (uint8 indices, a tail of 1) and one of 8 (whole words),
an output row with no block kept. On QEMU (M4) its sparse build equals the host build of the same
integer graph bit for bit, and so does its dense build; so does its 2:4 twin on the 2:4 kernel."""
import numpy as np
import pytest
import torch
from torch import nn

from edgeprune.compile.api import compile_model
from edgeprune.compile.dsp.packing import padded_length
from edgeprune.compile.dsp.sparse_dense import compress
from edgeprune.compile.host import host_outputs
from edgeprune.profile.run import run
from edgeprune.prune.errors import PruneError
from edgeprune.prune.gradual import UnstructuredStep
from edgeprune.prune.unstructured import make_permanent, prune_weights
from edgeprune.quantize import quantize

pytestmark = pytest.mark.xdist_group("sparse-dense")


def _blocks(weight: torch.Tensor) -> np.ndarray:
    """Non-zero weights per block of four along the flattened reduction, [O, blocks]."""
    rows = weight.detach().reshape(weight.shape[0], -1).numpy()
    padded = np.zeros((rows.shape[0], padded_length(rows.shape[1])))
    padded[:, :rows.shape[1]] = rows
    return (padded.reshape(rows.shape[0], -1, 4) != 0).sum(axis=2)


def _pruned_model(pattern: str) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1030, 13), nn.ReLU(), nn.Linear(13, 8), nn.ReLU(), nn.Linear(8, 5)).eval()
    prune_weights(model, 0.7 if pattern == "block4" else 0.5, pattern=pattern)
    make_permanent(model)
    with torch.no_grad():
        model[0].weight[1] = 0  # an output with no block kept
    return model


def _compiled(folder, pattern: str, modes: tuple[str, ...]) -> dict:
    calibration = np.random.default_rng(1).normal(size=(64, 1030)).astype(np.float32)
    quantized = quantize(_pruned_model(pattern), calibration, folder / "m.int8.onnx", input_shape=(1, 1030),
                         write_report=False).output
    return {mode: compile_model(quantized, "mps2-an386", folder / mode, sparse=mode) for mode in modes}


@pytest.fixture(scope="session")  # xdist may run another module in between: keep it alive
def builds(tmp_path_factory):
    """The odd-sized block-sparse model compiled for the M4 with --sparse on and off."""
    return _compiled(tmp_path_factory.mktemp("sparse"), "block4", ("on", "off"))


def test_compress_keeps_exactly_the_non_zero_blocks():
    weight = np.zeros((3, 10), np.int8)
    weight[0, 1], weight[0, 9], weight[2, 4:8] = -5, 7, [1, -2, 3, -128]
    sparse = compress(weight)
    assert sparse.starts.tolist() == [0, 2, 2, 3] and sparse.indices.tolist() == [0, 2, 1]
    assert sparse.indices.dtype == np.uint8 and sparse.blocks == 9
    restored = np.zeros((3, 12), np.int8)
    for row in range(3):
        for j in range(sparse.starts[row], sparse.starts[row + 1]):
            restored[row, 4 * sparse.indices[j]:4 * sparse.indices[j] + 4] = sparse.values[j:j + 1].view(np.int8)
    assert np.array_equal(restored[:, :10], weight)
    assert compress(np.ones((2, 1030), np.int8)).indices.dtype == np.int16  # 258 blocks a row


def test_block4_and_2_4_patterns_line_up_with_the_kernel_blocks():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 5, 3), nn.Linear(37, 7))
    prune_weights(model, 0.8, pattern="block4")
    make_permanent(model)
    for layer in model:
        counts = _blocks(layer.weight)
        assert set(np.unique(counts)) <= {0, 1, 3, 4}  # whole blocks (tails: 27 = 6 x 4 + 3, 37 = 9 x 4 + 1)
        assert abs((counts == 0).mean() - 0.8) < 0.05
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 5, 3), nn.Linear(37, 7))
    prune_weights(model, 0.5, pattern="2:4")
    make_permanent(model)
    assert all((_blocks(layer.weight)[:, :-1] == 2).all() for layer in model)  # 2 of every whole 4
    with pytest.raises(PruneError, match="2:4"):
        UnstructuredStep(sparsity=0.8, pattern="2:4")


def test_the_manifest_gives_each_dense_layers_choice_and_the_bytes_saved(builds):
    on, off = builds["on"].manifest, builds["off"].manifest
    assert on["sparse"]["sparse_layers"] == 3 and off["sparse"]["layers"] == []
    layers = [s["layer"] for s in on["steps"] if "layer" in s]
    assert [layer["weights"] for layer in layers] == ["block4-int8"] * 3
    assert on["sparse"]["saved_bytes"] == sum(layer["dense_weight_bytes"] - layer["weight_bytes"] for layer in layers)
    assert on["sparse"]["saved_bytes"] > 0.4 * 1032 * 13  # 70 % of the first layer's blocks are not stored
    assert on["elf"]["flash"]["weights"] < off["elf"]["flash"]["weights"] - on["sparse"]["saved_bytes"] // 2


@pytest.mark.qemu
def test_sparse_kernel_equals_the_host_build_bit_for_bit(builds):
    rng = np.random.default_rng(7)
    inputs = [rng.integers(-128, 128, (1, 1030)), np.full((1, 1030), 127), np.full((1, 1030), -128)]
    for x in (x.astype(np.int8) for x in inputs):
        expected = host_outputs(builds["on"], [x])[0]
        assert np.array_equal(run(builds["on"], [x]).measurement.outputs[0], expected)
        assert np.array_equal(run(builds["off"], [x]).measurement.outputs[0], expected)
    assert len(np.unique(run(builds["on"], [inputs[0].astype(np.int8)]).measurement.outputs[0])) > 1  # not saturated


@pytest.mark.qemu
def test_2_4_kernel_equals_the_host_build_and_stores_three_quarters(tmp_path):
    """--sparse on gives 2:4 weights the 2:4 kernel (dsp/nm_dense.py): 3 bytes a block of four."""
    compiled = _compiled(tmp_path, "2:4", ("on",))["on"]
    layers = [s["layer"] for s in compiled.manifest["steps"] if "layer" in s]
    assert [layer["weights"] for layer in layers] == ["2:4-int8"] * 3
    assert layers[0]["weight_bytes"] == 13 * 258 * 3  # 258 blocks a row (1030 / 4 rounded up to even), 3 B each
    rng = np.random.default_rng(5)
    for x in (rng.integers(-128, 128, (1, 1030)).astype(np.int8), np.full((1, 1030), -128, np.int8)):
        assert np.array_equal(run(compiled, [x]).measurement.outputs[0], host_outputs(compiled, [x])[0])


@pytest.mark.slow
@pytest.mark.qemu
def test_ad_autoencoder_at_80_percent_stores_half_the_weight_flash(tmp_path, host_reference):
    """The MLPerf Tiny AD auto-encoder (untrained: the flash does not depend on training), block
    pruned to 80 %: --sparse auto stores its weights in at most half the dense flash, and its
    outputs on QEMU equal the host build of the same integer graph and, with TFLM's single
    rounding (onnxruntime's), onnxruntime running its int8 ONNX."""
    from edgeprune.models import zoo

    torch.manual_seed(0)
    model = zoo.build_model("ad_autoencoder").eval()
    prune_weights(model, 0.8, pattern="block4")
    make_permanent(model)
    calibration = np.random.default_rng(1).normal(size=(64, 640)).astype(np.float32)
    quantized = quantize(model, calibration, tmp_path / "ad.int8.onnx", input_shape=(1, 640),
                         write_report=False).output
    compiled = compile_model(quantized, "mps2-an386", tmp_path / "ad", rounding="single")
    sparse = compiled.manifest["sparse"]
    assert sparse["sparse_layers"] >= 9  # the 128->8 layer may stay dense
    weight_flash = compiled.manifest["elf"]["flash"]["weights"]
    assert 2 * weight_flash <= weight_flash + sparse["saved_bytes"]  # dense: what it has plus what it saved
    x = np.random.default_rng(3).integers(-128, 128, (1, 640)).astype(np.int8)
    report = run(compiled, [x])
    assert np.array_equal(report.measurement.outputs[0], host_reference(compiled, [x])[0])
    assert report.max_abs_error == 0 and len(np.unique(report.measurement.outputs[0])) > 1


def test_sparse_on_without_the_dsp_kernels_is_said(tmp_path):
    """The M3 has no DSP extension: --sparse on cannot be honoured, and the compile says so."""
    calibration = np.random.default_rng(1).normal(size=(16, 1030)).astype(np.float32)
    quantized = quantize(_pruned_model("block4"), calibration, tmp_path / "m.int8.onnx", input_shape=(1, 1030),
                         write_report=False).output
    compiled = compile_model(quantized, "mps2-an385", tmp_path / "out", sparse="on")
    assert any(note.startswith("--sparse on is not honoured") for note in compiled.manifest["notes"])
    assert compiled.manifest["sparse"] == {"layers": [], "sparse_layers": 0, "saved_bytes": 0}
