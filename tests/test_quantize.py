"""Quantize the digits CNN trained on digits: accuracy, QDQ structure, methods, SQNR, CLI."""
from __future__ import annotations

import copy
import json

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from edgeprune.cli import main
from edgeprune.models import data, zoo
from edgeprune.models.export import to_onnx
from edgeprune.quantize import quantize
from edgeprune.quantize.api import report_path

SHAPE = zoo.input_shape("digits_cnn")
pytestmark = pytest.mark.xdist_group("quantize")  # one worker builds the module's fixtures


@pytest.fixture(scope="module")
def float_file(trained, tmp_path_factory):
    return to_onnx(trained, SHAPE, tmp_path_factory.mktemp("float") / "digits.onnx")


@pytest.fixture(scope="module")
def minmax(float_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("int8") / "digits.int8.onnx"
    return quantize(float_file, "digits", out)


def initializers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def test_int8_top1_within_one_point_of_float(minmax):
    assert minmax.evaluation_samples == len(data.digits(SHAPE).x_test)  # the held-out split
    assert minmax.float_accuracy > 0.95
    assert abs(minmax.accuracy_drop) <= 1.0
    assert minmax.agreement >= 0.99


def test_qdq_around_every_conv_and_gemm_with_int8_weights_and_int32_bias(minmax):
    model = onnx.load(minmax.output)
    values = initializers(model)
    producers = {out: n for n in model.graph.node for out in n.output}
    consumers = {i: n for n in model.graph.node for i in n.input}
    kernels = [n for n in model.graph.node if n.op_type in ("Conv", "Gemm")]
    assert [n.op_type for n in kernels] == ["Conv"] * 3 + ["Gemm"]
    for node in kernels:
        x, w, b = (producers[name] for name in node.input)
        assert {x.op_type, w.op_type, b.op_type} == {"DequantizeLinear"}
        assert producers[x.input[0]].op_type == "QuantizeLinear"
        assert consumers[node.output[0]].op_type == "QuantizeLinear"
        q_w, s_w, z_w = (values[name] for name in w.input)
        channels = q_w.shape[0]
        assert q_w.dtype == np.int8 and s_w.shape == (channels,)
        assert np.all(z_w == 0) and q_w.min() >= -127  # symmetric per output channel
        q_b, s_b, _ = (values[name] for name in b.input)
        s_x = values[x.input[1]]
        assert q_b.dtype == np.int32 and q_b.shape == (channels,)
        np.testing.assert_allclose(s_b, s_x * s_w, rtol=1e-6)
    input_users = [n.op_type for n in model.graph.node if model.graph.input[0].name in n.input]
    assert input_users == ["QuantizeLinear"]
    assert producers[model.graph.output[0].name].op_type == "DequantizeLinear"
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert minmax.float_nodes == []
    assert {o.domain for o in model.opset_import} == {""}


def test_report_json_beside_model(minmax):
    path = report_path(minmax.output)
    assert path.name == "digits.int8.json"
    saved = json.loads(path.read_text())
    assert saved["int8_accuracy"] == minmax.int8_accuracy
    assert saved["settings"]["extra_options"] == {"WeightSymmetric": True,
                                                  "ActivationSymmetric": False}
    assert [row["tensor"] for row in saved["tensors"]] == [r.tensor for r in minmax.tensors]


def test_sqnr_one_row_per_quantized_tensor_worst_first(minmax):
    model = onnx.load(minmax.output)
    dequantize = [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
    assert len(minmax.tensors) == len(dequantize)
    assert len({r.tensor for r in minmax.tensors}) == len(dequantize)
    assert {r.kind for r in minmax.tensors} == {"activation", "weight", "bias"}
    db = [r.sqnr_db for r in minmax.tensors]
    assert db == sorted(db)
    assert 25 < db[0] and all(r.sqnr_db > 60 for r in minmax.tensors if r.kind == "bias")
    assert len(minmax.table().splitlines()) == len(dequantize) + 1


@pytest.mark.slow  # three calibrations, entropy the costliest
def test_methods_give_different_scales(float_file, minmax, tmp_path):
    scales = {}
    for method in ("minmax", "percentile", "entropy"):
        report = quantize(float_file, "digits", tmp_path / f"{method}.onnx", method=method,
                          samples=100, eval_samples=50)
        assert report.method == method and report.agreement > 0.9
        model = onnx.load(report.output)
        scales[method] = {name: float(v) for name, v in initializers(model).items()
                          if name.endswith("_scale") and v.ndim == 0}
    assert scales["minmax"].keys() == scales["percentile"].keys() == scales["entropy"].keys()
    for a, b in (("minmax", "percentile"), ("minmax", "entropy"), ("percentile", "entropy")):
        assert scales[a] != scales[b]
    # entropy clips the ReLU outputs hardest
    assert sum(scales["entropy"].values()) < sum(scales["minmax"].values())


def test_channel_range_imbalance_ranks_worst(trained, minmax, tmp_path):
    """One channel scaled 100x into conv 2 and back out of it: the float model computes the same,
    but that channel now sets the per-tensor int8 range and crushes the others."""
    damaged = copy.deepcopy(trained)
    with torch.no_grad():
        batchnorm, next_conv = damaged[1][1], damaged[2][0]
        batchnorm.weight[3] *= 100
        batchnorm.bias[3] *= 100
        next_conv.weight[:, 3] /= 100
    report = quantize(damaged, "digits", tmp_path / "damaged.onnx", input_shape=SHAPE)
    assert report.float_accuracy == pytest.approx(minmax.float_accuracy)
    layer = next(r.layer for r in report.tensors if r.tensor == "2.0.weight")
    worst = report.tensors[0]
    assert worst.kind == "activation" and worst.layer == layer
    before = next(r.sqnr_db for r in minmax.tensors if r.tensor == worst.tensor)
    assert worst.sqnr_db < before - 15


def test_cli_prints_table_and_writes_model_and_report(float_file, tmp_path, capsys):
    out = tmp_path / "cli.int8.onnx"
    assert main(["quantize", str(float_file), "--calib", "digits", "-o", str(out),
                 "--samples", "50", "--rows", "3"]) == 0
    printed = capsys.readouterr().out
    assert "SQNR dB" in printed and "int8" in printed and "more tensors" in printed
    assert out.is_file() and out.with_suffix(".json").is_file()


def test_cli_wrong_shape_calibration_is_a_clean_error(float_file, tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((40, 8, 8), np.float32), y=np.arange(40) % 10)
    out = tmp_path / "never.onnx"
    assert main(["quantize", str(float_file), "--calib", str(bad), "-o", str(out)]) == 2
    error = capsys.readouterr().err
    assert "x has shape (40, 8, 8)" in error and "needs (N, 1, 8, 8)" in error
    assert not out.exists()
