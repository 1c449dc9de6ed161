"""The zoo models, fp32, compiled for the Cortex-M4 and run on QEMU, agree with onnxruntime."""
import numpy as np
import pytest

from edgeprune.models import zoo
from edgeprune.profile.run import run

pytestmark = pytest.mark.qemu


@pytest.mark.parametrize("name", zoo.model_names())
def test_zoo_model_matches_onnxruntime_on_m4(compiled, name):
    report = run(compiled(name), runs=2)
    assert report.relative_error < 1e-4
    assert report.measurement.outputs[0].shape == report.reference[0].shape
    # Two inferences execute the same instructions; the tick they start in may differ by one.
    assert abs(report.measurement.run_ticks[0] - report.measurement.run_ticks[1]) <= 1
    assert report.measurement.run_ticks[0] > 0


def test_two_boots_measure_identical_counts(compiled):
    first, second = (run(compiled("kws_dscnn"), runs=2) for _ in range(2))
    assert first.measurement.run_ticks == second.measurement.run_ticks
    assert first.measurement.layer_ticks == second.measurement.layer_ticks


def test_per_layer_instructions_add_up_to_the_total(compiled):
    report = run(compiled("ic_resnet8"))
    device = report.measurement
    assert len(device.layer_ticks) == len(report.compiled.manifest["steps"])
    assert sum(device.layer_ticks) == pytest.approx(device.run_ticks[-1], rel=1e-3)


def test_planned_arena_is_close_to_the_liveness_bound(compiled):
    memory = compiled("kws_dscnn").manifest["memory"]
    assert memory["liveness_bound_bytes"] <= memory["arena_bytes"] <= 1.05 * memory["liveness_bound_bytes"]
    assert memory["workspace_bytes"] == 0  # the lean schedule leaves no full-size intermediates


def test_outputs_follow_the_input(compiled):
    """Two different inputs give two different, each correct, outputs (no stale buffers)."""
    model = compiled("digits_cnn")
    shape = model.manifest["inputs"][0]["shape"]
    first, second = (np.random.default_rng(s).random(shape, dtype=np.float32) for s in (1, 2))
    a, b = run(model, [first]), run(model, [second])
    assert a.relative_error < 1e-4 and b.relative_error < 1e-4
    assert not np.allclose(a.measurement.outputs[0], b.measurement.outputs[0])
