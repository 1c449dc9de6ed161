"""Models with several outputs (issue 17, item 6): the C API, the manifest, `run` and `profile`
carry every output, each compared with onnxruntime."""
import numpy as np
import onnx
import pytest
import torch
from onnx import helper
from torch import nn

import edgeprune
from edgeprune.cli import main
from edgeprune.reference import output_errors, reference_outputs
from tests.onnx_op_models import SHAPE, _model, quantized

pytestmark = pytest.mark.xdist_group("multi-output")  # one worker keeps the module's fixture


class AutoEncoder(nn.Module):
    """Returns its reconstruction and its latent code; the latent also feeds the decoder."""

    def __init__(self):
        super().__init__()
        self.encode = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(64, 6))
        self.decode = nn.Sequential(nn.Linear(6, 64), nn.Unflatten(1, (4, 4, 4)),
                                    nn.ConvTranspose2d(4, 1, 4, stride=2, padding=1))

    def forward(self, x):
        latent = self.encode(x)
        return self.decode(latent), latent


@pytest.fixture(scope="module")
def two_outputs(tmp_path_factory):
    torch.manual_seed(0)
    return edgeprune.compile(AutoEncoder().eval(), input_shape=(1, 1, 8, 8),
                             out=tmp_path_factory.mktemp("multi") / "autoencoder")


def test_manifest_and_c_api_list_both_outputs(two_outputs):
    assert [(o["shape"], o["dtype"], o["bytes"]) for o in two_outputs.manifest["outputs"]] == [
        ([1, 1, 8, 8], "float32", 256), ([1, 6], "float32", 24)]
    header = (two_outputs.path / "src" / "edgeprune_model.h").read_text()
    assert "#define EDGEPRUNE_NUM_OUTPUTS 2" in header
    assert "#define EDGEPRUNE_OUTPUT_1_SHAPE {1, 6}" in header
    assert "edgeprune_output_0_t *output0, edgeprune_output_1_t *output1)" in header


@pytest.mark.qemu
def test_run_compares_each_output_with_onnxruntime(two_outputs, capsys):
    report = edgeprune.run(two_outputs)
    reference = reference_outputs(two_outputs.onnx, report.inputs)
    assert [o.shape for o in report.measurement.outputs] == [(1, 1, 8, 8), (1, 6)] == [r.shape for r in reference]
    for error, scale in output_errors(report.measurement.outputs, reference):
        assert error <= 1e-5 * scale
    assert main(["run", str(two_outputs.path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0].strip() for line in lines if line.strip().startswith("output ")] == \
        ["output 0 1x1x8x8", "output 1 1x6"]


@pytest.mark.qemu
def test_profile_checks_each_output(two_outputs, capsys):
    report = edgeprune.profile(two_outputs, "qemu:mps2-an386", runs=1, store=False)
    assert report.record.outputs_match
    assert [o.shape for o in report.measurement.outputs] == [(1, 1, 8, 8), (1, 6)]
    assert main(["profile", str(two_outputs.path), "--runs", "1", "--no-store"]) == 0
    out = capsys.readouterr().out
    assert "output 0 1x1x8x8: max |error|" in out and "output 1 1x6: max |error|" in out


@pytest.mark.qemu
def test_int8_model_with_two_outputs_has_both_edges_quantized(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Sigmoid", ["x"], ["b"])]
    model = quantized(_model(nodes, {"x": SHAPE}, {"a": SHAPE, "b": SHAPE}))
    compiled = edgeprune.compile(model, out=tmp_path / "two8")
    outputs = compiled.manifest["outputs"]
    assert [o["dtype"] for o in outputs] == ["int8", "int8"] and outputs[0]["scale"] != outputs[1]["scale"]
    report = edgeprune.run(compiled)
    assert report.exact_matches[0] == report.exact_matches[1] == 2 * int(np.prod(SHAPE))
    assert onnx.load(compiled.onnx).graph.output[1].type.tensor_type.elem_type == onnx.TensorProto.INT8
