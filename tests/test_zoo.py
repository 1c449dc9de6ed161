"""The zoo matches the published MLPerf Tiny counts, runs, and exports to ONNX faithfully."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from edgeprune.models import export, stats, zoo

# (MACs of conv/depthwise/dense, parameters with BN folded) from the MLPerf Tiny references.
PUBLISHED = {
    "kws_dscnn": (2.66e6, 22.6e3),
    "vww_mobilenet": (7.49e6, 211e3),
    "ic_resnet8": (12.5e6, 77.7e3),
    "ad_autoencoder": (0.26e6, 266e3),
}
ALLOWED_OPS = {"Conv", "Relu", "Add", "ReduceMean", "GlobalAveragePool", "AveragePool",
               "Flatten", "Reshape", "Gemm", "MatMul", "BatchNormalization"}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_counts_match_published(name):
    counted = stats.count(zoo.build_model(name), zoo.input_shape(name))
    macs, params = PUBLISHED[name]
    assert counted.macs == pytest.approx(macs, rel=0.02)
    assert counted.params == pytest.approx(params, rel=0.02)


def test_per_layer_counts_of_digits_cnn():
    layers = stats.count(zoo.build_model("digits_cnn"), (1, 1, 8, 8)).layers
    first = layers[0]
    assert (first.kind, first.output_shape) == ("conv", (16, 8, 8))
    assert first.macs == 8 * 8 * 16 * 9 and first.params == 16 * 9 + 16
    assert layers[-1].kind == "linear" and layers[-1].macs == 32 * 10


def test_depthwise_is_counted_per_channel():
    layers = stats.count(zoo.build_model("kws_dscnn"), (1, 1, 49, 10)).layers
    depthwise = [layer for layer in layers if layer.kind == "depthwise"]
    assert len(depthwise) == 4
    assert depthwise[0].macs == 25 * 5 * 64 * 9


@pytest.mark.parametrize("name", zoo.model_names())
def test_forward_and_onnx_export_match(name, tmp_path):
    model = zoo.build_model(name)
    shape = zoo.input_shape(name)
    x = torch.rand(shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(x).numpy()
    assert expected.shape == (1, zoo.num_outputs(name))
    path = export.to_onnx(model, shape, tmp_path / f"{name}.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{name}.onnx"]  # no temp file left
    assert {node.op_type for node in onnx.load(path).graph.node} <= ALLOWED_OPS
    session = ort.InferenceSession(str(path))
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


def test_build_is_deterministic_and_eval():
    a, b = zoo.build_model("ic_resnet8"), zoo.build_model("ic_resnet8")
    assert not a.training
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), name


def test_unknown_model_lists_known_names():
    with pytest.raises(zoo.UnknownModelError, match="digits_cnn.*kws_dscnn"):
        zoo.build_model("resnet50")


def test_zoo_command_lists_every_model_with_its_counts(capsys):
    from edgeprune.cli import main
    import edgeprune

    assert main(["zoo"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["model", "source"] and len(lines) == 1 + len(zoo.ZOO)
    rows = {row.name: row for row in edgeprune.zoo()}
    assert sorted(rows) == zoo.model_names()
    for line in lines[1:]:
        row = rows[line.split()[0]]
        assert f"{row.macs:,}" in line and f"{row.params:,}" in line and row.source in line and row.data in line
        assert "x".join(map(str, zoo.input_shape(row.name))) in line
    for name, (macs, params) in PUBLISHED.items():
        assert rows[name].macs == pytest.approx(macs, rel=0.02) and rows[name].params == pytest.approx(params, rel=0.02)
    assert rows["digits_cnn"].data == "digits (8x8)"
    assert rows["vww_mobilenet"].data == "digits resized to 96x96, 3 channels, binary (digit < 5)"
    assert rows["ad_autoencoder"].data == "digits tiled to 640 features as normal, synthetic anomalies (ROC-AUC)"


def test_compile_help_names_a_command_that_exists(capsys):
    from edgeprune.cli import build_parser, main

    with pytest.raises(SystemExit):
        main(["compile", "--help"])
    assert "edgeprune zoo" in " ".join(capsys.readouterr().out.split())  # argparse may wrap between the words
    assert "zoo" in build_parser()._subparsers._group_actions[0].choices


@pytest.mark.parametrize("name", ["kws_dscnn", "ic_resnet8"])
def test_export_with_one_registry_equals_torch_onnx_export(name, tmp_path):
    """`to_onnx` calls torch's exporter with one operator registry for every export: the file is
    byte for byte what the public `torch.onnx.export(dynamo=True)` gives, then the same optimizer."""
    import onnxscript.optimizer

    model, shape = zoo.build_model(name), zoo.input_shape(name)
    public = torch.onnx.export(model, (torch.zeros(shape),), dynamo=True, optimize=False, verbose=False)
    expected = onnxscript.optimizer.optimize(public.model_proto).SerializeToString()
    for attempt in range(2):  # the second export reuses the registry
        assert export.to_onnx(model, shape, tmp_path / f"{attempt}.onnx").read_bytes() == expected
