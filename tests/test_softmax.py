"""Softmax compiles (issue 17, item 4): a schedule primitive TVM refuses is skipped, not a crash."""
import pytest
import torch
import tvm
from tvm import s_tir, te

import edgeprune
from edgeprune.compile.schedule import try_primitive
from edgeprune.errors import UnsupportedOpError


class DenseSoftmax(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8 * 8 * 8, 10)

    def forward(self, x):
        return torch.softmax(self.fc(torch.relu(self.conv(x)).flatten(1)), dim=1)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return DenseSoftmax().eval()


def _sum_rows_schedule() -> s_tir.Schedule:
    a = te.placeholder((4, 8), name="a")
    k = te.reduce_axis((0, 8), name="k")
    total = te.compute((4,), lambda i: te.sum(a[i, k], axis=k), name="total")
    return s_tir.Schedule(tvm.IRModule({"main": te.create_prim_func([a, total])}))


def test_a_refused_primitive_returns_false_and_leaves_the_schedule():
    sch = _sum_rows_schedule()
    before = sch.mod.script()
    assert try_primitive(sch.compute_inline, sch.get_sblock("total")) is False  # a reduction cannot be inlined
    assert sch.mod.script() == before
    assert try_primitive(sch.get_loops, sch.get_sblock("total")) is True


def test_an_internal_check_failure_is_a_refusal_but_other_errors_propagate():
    def failed_check():
        raise tvm.error.InternalError("Check failed: (false) is false")

    def bug():
        raise ValueError("a bug, not a refusal")

    assert try_primitive(failed_check) is False
    with pytest.raises(ValueError):
        try_primitive(bug)


@pytest.mark.qemu
def test_fp32_softmax_compiles_and_matches_onnxruntime(tmp_path):
    model = edgeprune.compile(_model(), input_shape=(1, 1, 8, 8), out=tmp_path / "softmax")
    report = edgeprune.run(model)
    assert report.relative_error < 1e-4
    assert abs(float(report.measurement.outputs[0].sum()) - 1.0) < 1e-5


def test_int8_softmax_is_refused_by_the_integer_guard_naming_it(tmp_path):
    qdq = edgeprune.quantize(_model(), "digits", tmp_path / "softmax.int8.onnx", input_shape=(1, 1, 8, 8),
                             samples=32, write_report=False).output
    out = tmp_path / "softmax8"
    with pytest.raises(UnsupportedOpError, match=r"relax\.nn\.softmax \([^()]+ \(Softmax\)\): float32"):
        edgeprune.compile(qdq, out=out)
    assert not out.exists()
