"""Integer-only int8: TFLM requantize semantics, the zoo on QEMU bit-exact with a host build of the
same integer graph and within 1 LSB of onnxruntime, the integer-only guard, the int8 C API."""
import numpy as np
import onnx
import pytest
import tvm
from onnx import TensorProto, helper
from tvm import te

from edgeprune.compile.api import compile_model
from edgeprune.compile.int8_kernels import Requantize
from edgeprune.compile.requantize import ROUNDINGS, multiply_by_quantized_multiplier, quantize_multiplier
from edgeprune.errors import EdgepruneError, UnsupportedOpError
from edgeprune.models import zoo
from edgeprune.profile.run import run


@pytest.mark.parametrize("rounding, negative_shifts", [(r, False) for r in ROUNDINGS] + [("double", True)])
def test_requantize_matches_the_tflm_reference(rounding, negative_shifts):
    rng = np.random.default_rng(0)
    channels = 64
    real = np.exp(rng.uniform(np.log(1e-5), np.log(0.499 if negative_shifts else 2.0), channels))
    multiplier, shift = quantize_multiplier(real)
    acc = np.concatenate([rng.integers(-(1 << 22), 1 << 22, (channels, 200)),
                          rng.integers(-300, 300, (channels, 200))], axis=1).astype(np.int32)
    acc_t = te.placeholder(acc.shape, "int32", "acc")
    mult_t, shift_t = te.placeholder((channels,), "int32", "multiplier"), te.placeholder((channels,), "int8", "shift")
    requantize = Requantize(-5, -128, 127, rounding=rounding, negative_shifts=negative_shifts)
    out = te.compute(acc.shape, lambda c, i: requantize(acc_t[c, i], mult_t[c], shift_t[c]))
    kernel = tvm.compile(te.create_prim_func([acc_t, mult_t, shift_t, out]), target="llvm")
    got = tvm.runtime.tensor(np.zeros(acc.shape, np.int8))
    kernel(tvm.runtime.tensor(acc), tvm.runtime.tensor(multiplier.astype(np.int32)),
           tvm.runtime.tensor(shift.astype(np.int8)), got)
    expected = multiply_by_quantized_multiplier(acc, multiplier[:, None], shift[:, None], rounding)
    assert np.array_equal(got.numpy(), np.clip(expected - 5, -128, 127))


def test_single_and_double_rounding_part_only_near_half():
    acc = np.arange(-5000, 5000)
    multiplier, shift = quantize_multiplier(np.array(0.0371))
    double, single = (multiply_by_quantized_multiplier(acc, multiplier, shift, r) for r in ROUNDINGS)
    real = acc * multiplier * 2.0 ** (shift - 31)
    assert np.array_equal(single, np.floor(real + 0.5))
    parted = single != double
    assert 0 < parted.sum() and np.all(np.abs(np.abs(real - np.floor(real)) - 0.5)[parted] < 2.0 ** (shift + 1))


def test_quantize_multiplier_is_q31():
    multiplier, shift = quantize_multiplier(np.array([0.75, 1e-3, 1.5]))
    assert np.all((multiplier >= 1 << 30) & (multiplier < 1 << 31))
    assert np.allclose(multiplier * 2.0 ** (shift - 31), [0.75, 1e-3, 1.5], rtol=1e-9)


@pytest.mark.qemu
@pytest.mark.xdist_group("cortex-a-int8")  # with the Cortex-A test: one host build per model
@pytest.mark.parametrize("name, rounding", [(name, "double") for name in zoo.model_names()] + [("kws_dscnn", "single")])
def test_int8_zoo_model_on_m4(quantized, compiled, host_reference, name, rounding):
    model = compiled(quantized(name), rounding=rounding)
    assert model.manifest["inputs"][0]["dtype"] == "int8" and "scale" in model.manifest["inputs"][0]
    x = np.random.default_rng(3).integers(-128, 128, model.manifest["inputs"][0]["shape"]).astype(np.int8)
    report = run(model, [x])
    device = report.measurement.outputs[0].astype(np.int64)
    # The device computes exactly what the same integer graph computes on the host.
    host = host_reference(model, [x])[0]
    assert np.array_equal(device, host.astype(np.int64))
    # onnxruntime requantizes in float; a near-tie that rounds the other way (test_int8_layers)
    # can move later layers' values by 1 LSB too.
    ort = report.reference[0].astype(np.int64)
    assert np.abs(device - ort).max() <= 1
    assert (device == ort).mean() >= 0.9


def test_int8_weight_flash_is_a_byte_per_parameter_plus_per_channel_constants(quantized, compiled):
    from edgeprune.models import stats

    counted = stats.count(zoo.build_model("kws_dscnn"), zoo.input_shape("kws_dscnn"))
    channels = sum(layer.output_shape[0] for layer in counted.layers)
    fp32 = compiled("kws_dscnn").manifest["memory"]
    int8 = compiled(quantized("kws_dscnn"), kernels="portable").manifest["memory"]
    # int8 weights, then per output channel an int32 bias, an int32 multiplier and an int8 shift.
    assert counted.params <= int8["weights_bytes"] <= counted.params + 9 * channels + 64
    assert fp32["weights_bytes"] / int8["weights_bytes"] > 2


def test_dsp_weights_take_two_bytes_or_one_as_asked(quantized, compiled):
    wide, narrow = (compiled(quantized("kws_dscnn"), weights=layout).manifest["steps"] for layout in ("int16", "int8"))
    layers = [(a["layer"], b["layer"]) for a, b in zip(wide, narrow) if "layer" in a]
    assert {a["kind"] for a, _ in layers} == {"conv", "pointwise", "depthwise", "dense"}
    for a, b in layers:
        if a["kind"] == "depthwise":  # one layout: per kernel row (w0, w2), then the rows' w1 two to a word, as int16
            assert a == b
        else:
            assert (a["weights"], b["weights"], a["weight_bytes"]) == ("int16", "int8", 2 * b["weight_bytes"])


@pytest.mark.parametrize("name", ["kws_dscnn", "ic_resnet8"])
def test_int8_arena_is_a_quarter_of_fp32(quantized, compiled, name):
    # Padding is inlined into each int8 convolution: no padded copy in the arena.
    fp32, int8 = compiled(name).manifest["memory"], compiled(quantized(name)).manifest["memory"]
    assert int8["arena_bytes"] <= fp32["arena_bytes"] / 3.9
    assert int8["arena_bytes"] <= 1.01 * int8["liveness_bound_bytes"]


def test_unknown_rounding_lists_the_known_ones(quantized, tmp_path):
    with pytest.raises(EdgepruneError, match="double, single"):
        compile_model(quantized("digits_cnn"), "mps2-an386", tmp_path / "out", rounding="nearest")


def test_int8_header_has_scale_and_zero_point(quantized, compiled):
    header = (compiled(quantized("digits_cnn")).path / "src" / "edgeprune_model.h").read_text()
    for macro in ("EDGEPRUNE_INPUT_0_SCALE", "EDGEPRUNE_INPUT_0_ZERO_POINT", "EDGEPRUNE_OUTPUT_0_ZERO_POINT",
                  "typedef int8_t edgeprune_input_0_t", "edgeprune_input_0_from_float", "edgeprune_output_0_to_float"):
        assert macro in header


def _qdq_with_float_softmax(path):
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xf"]),
        helper.make_node("Softmax", ["xf"], ["h"], name="float_softmax"),
        helper.make_node("QuantizeLinear", ["h", "s", "z"], ["hq"]),
        helper.make_node("DequantizeLinear", ["hq", "s", "z"], ["y"]),
    ]
    inits = [helper.make_tensor("s", TensorProto.FLOAT, [], [0.05]), helper.make_tensor("z", TensorProto.INT8, [], [0])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_float_op_inside_an_int8_model_is_named(tmp_path):
    with pytest.raises(UnsupportedOpError, match="softmax.*float32") as err:
        compile_model(_qdq_with_float_softmax(tmp_path / "m.onnx"), "mps2-an386", tmp_path / "out")
    assert "Supported in int8" in str(err.value)


def _tflm_average(windows: np.ndarray) -> np.ndarray:
    """TFLM's int8 average pool: the raw sum over the window, divided rounding half away from zero."""
    total, count = windows.reshape(len(windows), -1).sum(axis=1), windows[0].size
    return np.where(total > 0, (total + count // 2) // count, -((-total + count // 2) // count))


def test_avg_pool_rounds_ties_away_from_zero_as_tflm():
    """Issue 15: with a 64-element window, -8160 / 64 = -127.5 is -128 in TFLM."""
    from edgeprune.compile.int8 import _headroom
    from edgeprune.compile.int8_kernels import avg_pool2d

    rng = np.random.default_rng(0)
    windows = np.concatenate([np.repeat([-128, -127], 32).reshape(1, 8, 8),
                              rng.integers(-128, 128, (63, 8, 8))]).astype(np.int8)
    left_shift = _headroom(64)
    multiplier, shift = (int(v) for v in quantize_multiplier(np.array(1 / (64 * (1 << left_shift)))))
    x = te.placeholder((1, 64, 8, 8), "int8", "x")
    y = avg_pool2d(x, pool=(8, 8), strides=(8, 8), padding=(0, 0, 0, 0), input_zero_point=-128, left_shift=left_shift,
                   multiplier=multiplier, shift=shift, requantize=Requantize(-128, -128, 127))
    kernel = tvm.compile(te.create_prim_func([x, y]), target="llvm")
    got = tvm.runtime.tensor(np.zeros((1, 64, 1, 1), np.int8))
    kernel(tvm.runtime.tensor(windows[None]), got)
    assert got.numpy().reshape(-1)[0] == -128
    assert np.array_equal(got.numpy().reshape(-1), _tflm_average(windows.astype(np.int64)))
