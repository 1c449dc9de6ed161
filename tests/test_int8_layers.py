"""Every intermediate int8 tensor of the zoo models against onnxruntime, layer by layer: each
layer lowered by edgeprune and fed onnxruntime's own values of its inputs."""
import numpy as np
import onnx
import pytest
import torch
from torch import nn

from edgeprune.models import data, zoo
from edgeprune.testing.layer_agreement import TIE_TOLERANCE, integer_layers, layer_agreement


def _agreement(quantized, name: str, rounding: str):
    model = onnx.load(quantized(name))
    x = data.digits(zoo.input_shape(name)).x_test[:4]
    return model, layer_agreement(model, [x[i:i + 1] for i in range(len(x))], rounding)


@pytest.mark.parametrize("name", zoo.model_names())
def test_single_rounding_matches_onnxruntime_on_every_intermediate_tensor(quantized, name):
    model, layers = _agreement(quantized, name, "single")
    assert len(layers) == len(integer_layers(model)) > 0
    for result in layers:
        assert result.max_abs_diff <= 1, result
        assert result.exact_fraction >= 0.999, result
        # What remains are exact ties: TFLM rounds them up, onnxruntime to even.
        assert result.ties == result.differ, result


@pytest.mark.parametrize("name", zoo.model_names())
def test_double_rounding_differs_from_onnxruntime_only_next_to_a_tie(quantized, name):
    _, layers = _agreement(quantized, name, "double")
    for result in layers:
        assert result.max_abs_diff <= 1, result
        assert result.ties == result.differ, f"{result}: a difference farther than {TIE_TOLERANCE} LSB from a tie"
    # Over all intermediate tensors of the model, at least 99.9 % of elements are exact.
    assert sum(r.differ for r in layers) / sum(r.elements for r in layers) <= 0.001


def test_layers_are_found_with_their_int8_inputs(quantized):
    model = onnx.load(quantized("ic_resnet8"))
    layers = integer_layers(model)
    quantized_tensors = {n.output[0] for n in model.graph.node if n.op_type == "QuantizeLinear"}
    assert all(set(layer.inputs) <= quantized_tensors for layer in layers)
    residual_adds = [layer for layer in layers if layer.ops == ("Add",) or layer.ops[-2:] == ("Add", "Relu")]
    assert residual_adds and all(len(layer.inputs) == 2 for layer in residual_adds)
    assert np.all([layer.scale > 0 for layer in layers])


class _ConcatPool(nn.Module):
    """Two branches at different scales joined by a concat, then an average pool."""

    def __init__(self):
        super().__init__()
        self.wide, self.narrow, self.fc = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(1, 4, 1), nn.Linear(128, 10)

    def forward(self, x):
        joined = torch.cat([torch.relu(self.wide(x)), self.narrow(x)], dim=1)
        return self.fc(nn.functional.avg_pool2d(joined, 2).flatten(1))


@pytest.mark.qemu
def test_concat_with_rescale_and_average_pool(tmp_path):
    from edgeprune.compile.api import compile_model
    from edgeprune.compile.host import host_outputs
    from edgeprune.profile.run import run
    from edgeprune.quantize import quantize

    torch.manual_seed(0)
    samples = np.random.default_rng(0).random((64, 1, 8, 8)).astype(np.float32)
    qdq = quantize(_ConcatPool(), samples, tmp_path / "m.int8.onnx", input_shape=(1, 1, 8, 8), train_epochs=0,
                   samples=32, write_report=False).output
    compiled = compile_model(qdq, "mps2-an386", tmp_path / "out")
    assert {"concat_int8", "avg_pool2d_int8"} <= {step["kernel"] for step in compiled.manifest["steps"]}
    x = np.random.default_rng(1).integers(-128, 128, (1, 1, 8, 8)).astype(np.int8)
    assert np.array_equal(run(compiled, [x]).measurement.outputs[0], host_outputs(compiled, [x])[0])
    layers = layer_agreement(onnx.load(qdq), [samples[i:i + 1] for i in range(4)])
    assert [r.layer.ops for r in layers if r.layer.ops[0] in ("Concat", "AveragePool")] == [("Concat",), ("AveragePool",)]
    for result in layers:
        assert result.max_abs_diff <= 1 and result.ties == result.differ, result
