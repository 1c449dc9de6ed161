"""The compiler's passes one by one: the lean schedule, the pointer signature, workspace sizing."""
import tvm
from tvm import tirx

from edgeprune.compile import passes
from edgeprune.compile.api import _kernel_module, plan_model
from edgeprune.compile.frontend import load_onnx
from edgeprune.compile.workspace import kernel_workspace_bytes, workspace_bytes
from edgeprune.targets import load_target

TARGET = load_target("mps2-an386").llvm_target()


def _kernels(without: str | None = None):
    graph, plan = plan_model(load_onnx("digits_cnn"), TARGET)
    pipeline = [p for p in passes.KERNEL_PASSES if p.name != without]
    return passes.run_passes(_kernel_module(graph, plan), pipeline, TARGET)


def test_passes_are_named_and_printable():
    text = passes.describe(passes.GRAPH_PASSES + passes.KERNEL_PASSES)
    for name in ("LegalizeOps", "StaticPlanBlockMemory", "LeanSchedule", "PlainPointerSignature"):
        assert name in text
    assert len({p.name for p in passes.KERNEL_PASSES}) == len(passes.KERNEL_PASSES)


def test_lean_schedule_removes_the_workspace_that_plain_lowering_needs():
    lean = workspace_bytes(_kernels())
    plain = workspace_bytes(_kernels(without="LeanSchedule"))
    assert max(lean.values()) == 0
    # Unscheduled, the first conv keeps its 16x8x8 fp32 pre-activation in the workspace.
    assert max(plain.values()) >= 16 * 8 * 8 * 4


def test_pointer_signature_gives_plain_c_functions():
    for gv, func in _kernels().functions.items():
        assert func.attrs["global_symbol"] == gv.name_hint
        assert str(func.ret_type) == "int32"
        assert all(isinstance(p.ty, tvm.ir.PointerType) for p in func.params)


def _alloc(nbytes: int):
    return tirx.TVMBackendAllocWorkspace(1, 0, tvm.tirx.const(nbytes, "uint64"), 2, 32)


def test_workspace_visitor_follows_lifo_nesting():
    pointer = tirx.Var("p", tvm.ir.PointerType(tvm.ir.PrimType("float32")))
    # Two nested blocks (2048 + 1000 -> 1008 aligned), freed, then one block of 2500 alone.
    calls = [_alloc(2048), _alloc(1000), tirx.TVMBackendFreeWorkspace(1, 0, pointer),
             tirx.TVMBackendFreeWorkspace(1, 0, pointer), _alloc(2500), tirx.TVMBackendFreeWorkspace(1, 0, pointer)]
    func = tirx.PrimFunc([pointer], tirx.SeqStmt([tirx.Evaluate(c) for c in calls]))
    assert kernel_workspace_bytes(func) == 2048 + 1008
    sequential = [calls[0], calls[2], calls[4], calls[5]]  # 2048 freed before 2500 is taken
    func = tirx.PrimFunc([pointer], tirx.SeqStmt([tirx.Evaluate(c) for c in sequential]))
    assert kernel_workspace_bytes(func) == 2512


def _int8_conv(channels: int, groups: int = 1) -> tirx.PrimFunc:
    from tvm import te

    from edgeprune.compile.int8_kernels import Requantize, conv2d

    x = te.placeholder((1, 12, 6, 6), "int8", name="x")
    weight = te.placeholder((channels, 12 // groups, 3, 3), "int8", name="w")
    per_channel = [te.placeholder((channels,), dtype, name=n)
                   for n, dtype in (("bias", "int32"), ("multiplier", "int32"), ("shift", "int8"))]
    y = conv2d(x, weight, *per_channel, strides=(1, 1), padding=(1, 1, 1, 1), dilation=(1, 1),
               groups=groups, input_zero_point=-3, requantize=Requantize(-128, -128, 127))
    return te.create_prim_func([x, weight, *per_channel, y])


def _unrolled_extents(func: tirx.PrimFunc) -> list[int]:
    import tvm_ffi

    loops = []
    tvm_ffi.structural_walk(func.body, [(tirx.For, loops.append)], order="pre")
    return [int(loop.extent) for loop in loops if loop.kind == tirx.ForKind.UNROLLED]


def test_lean_schedule_blocks_output_channels_in_registers_where_they_divide():
    from edgeprune.compile.schedule import schedule_lean

    # 12 channels: blocks of 4 (init, accumulate, epilogue); 10: of 2; 11, or depthwise: none.
    assert _unrolled_extents(schedule_lean(_int8_conv(12))) == [4, 4, 4]
    assert _unrolled_extents(schedule_lean(_int8_conv(10))) == [2, 2, 2]
    assert _unrolled_extents(schedule_lean(_int8_conv(11))) == []
    assert _unrolled_extents(schedule_lean(_int8_conv(12, groups=12))) == []
