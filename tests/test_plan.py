"""The execution plan: tensors live at the same time never share bytes, and the arena is never
below the liveness bound."""
import pytest

from edgeprune.compile.api import plan_model
from edgeprune.compile.frontend import load_onnx
from edgeprune.models import zoo
from edgeprune.targets import load_target


def _live_ranges(plan):
    first, last, where = {}, {}, {}
    for t, step in enumerate(plan.steps):
        for ref in step.args:
            if ref.kind == "arena":
                first.setdefault(ref.tensor, t)
                last[ref.tensor] = t
                where[ref.tensor] = (ref.index, ref.index + ref.nbytes)
    return first, last, where


@pytest.mark.parametrize("name", zoo.model_names())
def test_live_tensors_never_overlap(name):
    _, plan = plan_model(load_onnx(name), load_target("mps2-an386").llvm_target())
    first, last, where = _live_ranges(plan)
    assert where, "the plan puts activations in the arena"
    for t in range(len(plan.steps)):
        live = sorted(where[k] for k in where if first[k] <= t <= last[k])
        for (_, end), (start, _) in zip(live, live[1:]):
            assert end <= start, f"step {t}: overlapping tensors {live}"
    assert all(end <= plan.arena_bytes for _, end in where.values())
    assert plan.liveness_bound_bytes <= plan.arena_bytes


def test_every_kernel_argument_is_resolved():
    _, plan = plan_model(load_onnx("ic_resnet8"), load_target("mps2-an386").llvm_target())
    kinds = {ref.kind for step in plan.steps for ref in step.args}
    assert kinds <= {"input", "output", "weight", "arena"}
    assert plan.steps[0].args[0].kind == "input" and plan.steps[-1].args[-1].kind == "output"
    # Every weight the kernels read is a float32 constant from the model (none are lost or cast).
    assert len(plan.weights) > 0 and all(w.dtype.name == "float32" for w in plan.weights)
