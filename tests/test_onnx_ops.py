"""The ONNX operator table (issue 17, item 12): one small model per supported operator, compiled for
the M4 (mps2-an386) and run on QEMU against onnxruntime; the README's list is the same table."""
import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import edgeprune
from edgeprune.compile.frontend import SUPPORTED_OPS
from edgeprune.compile.index_casts import narrow_index_casts
from edgeprune.compile.qdq_edges import is_quantized
from edgeprune.reference import reference_outputs, relative_error
from tests import onnx_op_models
from tests.onnx_op_models import INT8, MODELS, int8_model

FLOAT_TOLERANCE = 2e-6  # relative to each output's largest magnitude (measured: at most 1.6e-7)


@pytest.fixture(scope="session")
def op_firmware(tmp_path_factory):
    """op_firmware(op, variant) -> (float model, CompiledModel), each compiled once per session."""
    cache = {}

    def get(op: str, variant: str):
        if (op, variant) not in cache:
            model = MODELS[op][variant]()
            out = tmp_path_factory.mktemp("ops") / f"{op}-{variant.replace(' ', '_')}"
            cache[op, variant] = model, edgeprune.compile(model, "mps2-an386", out)
        return cache[op, variant]

    return get


@pytest.fixture(scope="session")
def int8_firmware(tmp_path_factory):
    """int8_firmware(op) -> (QDQ model, CompiledModel), each compiled once per session."""
    cache = {}

    def get(op: str):
        if op not in cache:
            model = int8_model(op)
            cache[op] = model, edgeprune.compile(model, "mps2-an386", tmp_path_factory.mktemp("int8-ops") / op)
        return cache[op]

    return get


def test_every_supported_operator_has_a_model_and_no_model_tests_an_unlisted_one():
    assert sorted(MODELS) == sorted(SUPPORTED_OPS)
    assert sorted(INT8) == sorted(op for op, int8 in SUPPORTED_OPS.items() if int8)


def _every_int8_value(manifest: dict, descending: bool) -> list[np.ndarray]:
    values = np.arange(127, -129, -1) if descending else np.arange(-128, 128)
    return [np.resize(values, spec["shape"]).astype(np.int8) for spec in manifest["inputs"]]


@pytest.mark.qemu
@pytest.mark.parametrize("op", sorted(INT8))
def test_int8_operator_on_the_m4_equals_onnxruntime(op, int8_firmware):
    """Tables and data movement equal onnxruntime's float QDQ graph; the integer kernels requantize
    as TFLM does (Q31 multipliers), within one step of onnxruntime's float requantize."""
    model, compiled = int8_firmware(op)
    lsb = 1 if SUPPORTED_OPS[op].startswith("integer kernel") else 0
    assert all(spec["dtype"] == "int8" for spec in compiled.manifest["inputs"] + compiled.manifest["outputs"])
    for descending in (False, True):  # every int8 input value, in two runs
        report = edgeprune.run(compiled, _every_int8_value(compiled.manifest, descending))
        # ... against the QDQ file as given (before any rewrite), run in float on the dequantized inputs
        floats = [((x.astype(np.float32) - spec["zero_point"]) * np.float32(spec["scale"]))
                  for x, spec in zip(report.inputs, compiled.manifest["inputs"])]
        for device, ref, spec in zip(report.measurement.outputs, reference_outputs(model, floats),
                                     compiled.manifest["outputs"]):
            expected = np.rint(ref / np.float32(spec["scale"])) + spec["zero_point"]
            assert np.abs(device.astype(np.int32) - expected).max() <= lsb


@pytest.mark.qemu
@pytest.mark.parametrize("op,variant", onnx_op_models.cases())
def test_operator_on_the_m4_matches_onnxruntime(op, variant, op_firmware):
    model, compiled = op_firmware(op, variant)
    assert op in {n.op_type for n in model.graph.node}
    report = edgeprune.run(compiled)
    assert [o.shape for o in report.measurement.outputs] == [r.shape for r in report.reference]
    assert report.relative_error < FLOAT_TOLERANCE
    if not is_quantized(model):  # also the file as given (Upsample: before it became Resize)
        assert relative_error(report.measurement.outputs, reference_outputs(model, report.inputs)) < FLOAT_TOLERANCE


def test_upsample_becomes_resize_with_upsample_coordinates_and_the_compile_says_so(op_firmware):
    _, compiled = op_firmware("Upsample", "linear x2,x3")
    saved = onnx.load(compiled.onnx)
    resize = [n for n in saved.graph.node if n.op_type == "Resize"]
    assert [n.op_type for n in saved.graph.node if n.op_type == "Upsample"] == [] and len(resize) == 1
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in resize[0].attribute}
    assert attrs["coordinate_transformation_mode"] == b"asymmetric" and attrs["nearest_mode"] == b"floor"
    assert compiled.manifest["notes"] == ["Upsample (deprecated) replaced by Resize: ONNX opset 9 upgraded to 13"]


def test_int64_float_casts_go_through_int32():
    from tvm import te, tirx

    x = te.placeholder((6,), name="x")
    y = te.compute((12,), lambda i: x[te.max(te.min((i.astype("float32") * 0.5).astype("int64"), 5), 0)], name="y")
    func = narrow_index_casts(te.create_prim_func([x, y]))
    casts = []
    import tvm_ffi

    tvm_ffi.structural_walk(func.body, [(tirx.Cast, lambda c: casts.append((str(c.value.ty), str(c.ty))))],
                            order="pre")
    assert ("float32", "int64") not in casts and ("int64", "float32") not in casts
    assert ("int32", "int64") in casts and ("float32", "int32") in casts


class _Exported(nn.Module):
    """The new operators as torch exports them; `int8`: those with an int8 lowering only."""

    def __init__(self, int8: bool):
        super().__init__()
        self.int8 = int8
        self.conv, self.prelu = nn.Conv2d(1, 8, 3, padding=1), nn.PReLU(8)
        self.up = nn.Conv2d(8, 8, 1) if int8 else nn.ConvTranspose2d(8, 8, 2, stride=2)
        self.mix, self.act = nn.Conv2d(8, 8, 3), nn.Tanh() if int8 else nn.Hardswish()
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        h = F.leaky_relu(self.up(self.prelu(self.conv(x))), 0.1)
        h = self.act(self.mix(F.pad(h, (1, 1, 1, 1), mode="reflect")))
        h = F.elu(F.interpolate(h, scale_factor=2, mode="nearest" if self.int8 else "bilinear"))
        if not self.int8:
            a, b = h.chunk(2, dim=1)
            h = torch.cat([a * b, a - b / (b * b + 1)], dim=1)
        h = h.mean((2, 3)) if self.int8 else F.adaptive_max_pool2d(h, 1).flatten(1)
        return torch.sigmoid(self.fc(h))


@pytest.mark.slow
@pytest.mark.qemu
def test_torch_exported_model_with_the_new_operators_in_float32(tmp_path):
    torch.manual_seed(0)
    compiled = edgeprune.compile(_Exported(int8=False).eval(), input_shape=(1, 1, 8, 8), out=tmp_path / "fp32")
    ops = {n.op_type for n in onnx.load(compiled.onnx).graph.node}
    assert {"PRelu", "ConvTranspose", "LeakyRelu", "Pad", "HardSwish", "Resize", "Elu", "Split", "Mul", "Sub",
            "Div", "ReduceMax"} <= ops
    assert edgeprune.run(compiled).relative_error < FLOAT_TOLERANCE


@pytest.mark.slow
@pytest.mark.qemu
def test_torch_exported_model_quantized_by_edgeprune_runs_integer_only(tmp_path):
    torch.manual_seed(0)
    qdq = edgeprune.quantize(_Exported(int8=True).eval(), "digits", tmp_path / "int8.onnx", input_shape=(1, 1, 8, 8),
                             samples=32, write_report=False).output
    compiled = edgeprune.compile(qdq, out=tmp_path / "int8")
    assert {"PRelu", "LeakyRelu", "Pad", "Tanh", "Resize", "Elu", "Sigmoid"} <= \
        {n.op_type for n in onnx.load(compiled.onnx).graph.node}
    kernels = [s["kernel"] for s in compiled.manifest["steps"]]
    assert sum(k.startswith("table_int8") for k in kernels) == 5 and "mirror_pad" in kernels
    assert compiled.manifest["notes"] == ["QDQ Pad on int8 (same scale in and out): node_pad"]
    report = edgeprune.run(compiled)
    assert report.exact_matches[0] == report.exact_matches[1]


def test_int8_pad_only_where_scale_and_zero_point_are_the_same_on_both_sides():
    from edgeprune.compile.qdq_edges import strip_qdq_edges
    from edgeprune.compile.qdq_pad import pad_int8

    same, *_ = strip_qdq_edges(int8_model("Pad"))
    padded, notes = pad_int8(same)
    assert [n.op_type for n in padded.graph.node] == ["Pad"]
    assert notes == ["QDQ Pad on int8 (same scale in and out): y_f"]
    value = next(i for i in padded.graph.initializer if i.name == "y_f_int8_value")
    assert onnx.numpy_helper.to_array(value) == np.int8(round(0.25 * 32) + 5)  # 0.25 at scale 1/32, zero point 5
    rescaled = int8_model("Pad")
    scale = next(i for i in rescaled.graph.initializer if i.name == "y_scale")
    scale.CopyFrom(onnx.numpy_helper.from_array(np.array(0.05, np.float32), "y_scale"))  # the output's own scale
    other, *_ = strip_qdq_edges(rescaled)
    assert pad_int8(other) == (other, [])
