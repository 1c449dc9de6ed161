"""Every intermediate int8 tensor of the zoo models against onnxruntime, layer by layer: each
layer lowered by edgeprune and fed onnxruntime's own values of its inputs."""
import numpy as np
import onnx
import pytest

from edgeprune.compile.layer_agreement import TIE_TOLERANCE, integer_layers, layer_agreement
from edgeprune.models import data, zoo


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
    elements = sum(r.elements for r in layers)
    assert sum(r.differ for r in layers) / elements <= 0.002


def test_layers_are_found_with_their_int8_inputs(quantized):
    model = onnx.load(quantized("ic_resnet8"))
    layers = integer_layers(model)
    quantized_tensors = {n.output[0] for n in model.graph.node if n.op_type == "QuantizeLinear"}
    assert all(set(layer.inputs) <= quantized_tensors for layer in layers)
    residual_adds = [layer for layer in layers if layer.ops == ("Add",) or layer.ops[-2:] == ("Add", "Relu")]
    assert residual_adds and all(len(layer.inputs) == 2 for layer in residual_adds)
    assert np.all([layer.scale > 0 for layer in layers])
