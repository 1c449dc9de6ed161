"""The ONNX operator table (issue 17, item 12): one small model per supported operator, compiled for
the M4 (mps2-an386) and run on QEMU against onnxruntime; the README's list is the same table."""
import onnx
import pytest

import edgeprune
from edgeprune.compile.frontend import SUPPORTED_OPS
from edgeprune.compile.index_casts import narrow_index_casts
from edgeprune.compile.qdq_edges import is_quantized
from edgeprune.profile.run import reference_outputs, relative_error
from tests import onnx_op_models
from tests.onnx_op_models import MODELS

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


def test_every_supported_operator_has_a_model_and_no_model_tests_an_unlisted_one():
    assert sorted(MODELS) == sorted(SUPPORTED_OPS)


@pytest.mark.qemu
@pytest.mark.parametrize("op,variant", onnx_op_models.cases())
def test_operator_on_the_m4_matches_onnxruntime(op, variant, op_firmware):
    model, compiled = op_firmware(op, variant)
    assert op in {n.op_type for n in model.graph.node}
    report = edgeprune.run(compiled)
    assert [o.shape for o in report.device.outputs] == [r.shape for r in report.reference]
    assert report.relative_error < FLOAT_TOLERANCE
    if not is_quantized(model):  # also the file as given (Upsample: before it became Resize)
        assert relative_error(report.device.outputs, reference_outputs(model, report.inputs)) < FLOAT_TOLERANCE


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
