"""The NEON schedule of Linux (Cortex-A) targets: what it generates, that bare-metal targets keep
the lean schedule, that kernels free their workspace before returning, and what it saves on the
emulated core (the zoo tests in test_cortex_a.py check that every model still computes right)."""
import pytest
import tvm
import tvm_ffi
from tvm import tirx

from edgeprune.compile import passes
from edgeprune.compile.api import _kernel_module, plan_model
from edgeprune.compile.frontend import load_onnx
from edgeprune.compile.vector_schedule import LANES, is_linux_target
from edgeprune.models import stats, zoo
from edgeprune.profile.run import run
from edgeprune.targets import load_target

_FREE = tvm.ir.Op.get("tirx.TVMBackendFreeWorkspace")


def _kernels(board: str):
    target = load_target(board).llvm_target()
    graph, plan = plan_model(load_onnx("digits_cnn"), target)
    return passes.run_passes(_kernel_module(graph, plan), passes.KERNEL_PASSES, target)


def _vector_widths(func) -> set[int]:
    """The lane counts of every value a kernel stores ("float32x8" has 8)."""
    widths = set()

    def on_store(store):
        _, _, lanes = str(store.value.ty.dtype).partition("x")
        widths.add(int(lanes or 1))

    tvm_ffi.structural_walk(func.body, [(tirx.BufferStore, on_store)], order="pre")
    return widths


def test_only_linux_targets_take_the_vector_schedule():
    assert [is_linux_target(load_target(b).llvm_target()) for b in ("cortex-a53", "cortex-a7", "mps2-an386")] == \
        [True, True, False]
    assert any(LANES in _vector_widths(f) for f in _kernels("cortex-a53").functions.values())
    assert all(_vector_widths(f) <= {1} for f in _kernels("mps2-an386").functions.values())


def test_kernels_free_their_workspace_before_they_return():
    """The padded input copy is workspace; a `return 0` before its free would leak it on every call."""
    with_workspace = 0
    for func in _kernels("cortex-a53").functions.values():
        statements: list = []
        tvm_ffi.structural_walk(func.body, [(tirx.Stmt, statements.append)], order="pre")
        frees = [i for i, s in enumerate(statements) if isinstance(s, tirx.IfThenElse)
                 and isinstance(s.condition, tirx.NE) and s.condition.a.op.same_as(_FREE)]
        returns = [i for i, s in enumerate(statements) if isinstance(s, tirx.Return)]
        with_workspace += bool(frees)
        assert returns and all(i < returns[-1] for i in frees)
    assert with_workspace > 0


@pytest.mark.qemu
@pytest.mark.parametrize("name, int8, per_mac", [("digits_cnn", False, 0.8), ("ad_autoencoder", True, 0.65)])
def test_vector_code_takes_fewer_instructions_than_multiply_accumulates(compiled, quantized, name, int8, per_mac):
    """Measured with LeanSchedule instead (before its register blocks): 6.0 instructions per MAC
    for the fp32 digits CNN, 0.78 for the int8 autoencoder (2.6 when its [N, K] weights were vectorized along N, gathering)."""
    macs = stats.count(zoo.build_model(name), zoo.input_shape(name)).macs
    model = compiled(quantized(name) if int8 else name, "cortex-a53")
    assert run(model).measurement.last < per_mac * macs
