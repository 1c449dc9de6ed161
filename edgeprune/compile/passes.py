"""The compiler as lists of named passes, printable (`edgeprune compile --list-passes`) and
runnable one by one. Graph passes work on the Relax module; kernel passes on its PrimFuncs."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import tvm
from tvm import relax, s_tir, tirx

from edgeprune.compile.index_casts import NarrowIndexCasts
from edgeprune.compile.int8 import lower_qdq_to_integer
from edgeprune.compile.integer_guard import check_integer_only
from edgeprune.compile.pointer_signature import PlainPointerSignature, ReturnZero
from edgeprune.compile.schedule import LeanSchedule
from edgeprune.compile.sources import fuse_ops
from edgeprune.compile.vector_schedule import VectorSchedule, is_linux_target


@dataclass(frozen=True)
class PassOptions:
    """The user's choices that passes read: TFLM's requantize rounding ("double" or "single"), and
    the int8 kernels: "auto" takes the hand-written kernels on cores that have them (compile/dsp/, compile/neon/),
    "portable" the TE kernels everywhere (slower); and how the DSP kernels store
    weights (defaults.WEIGHT_LAYOUTS), and whether their dense layers store block-sparse weights
    (defaults.SPARSE_CHOICES); and whether they favour speed or code size (defaults.OPTIMIZE_CHOICES)."""

    rounding: str = "double"
    kernels: str = "auto"
    weights: str = "auto"
    sparse: str = "auto"
    optimize: str = "speed"


@dataclass(frozen=True)
class NamedPass:
    name: str
    doc: str
    make: Callable[..., Callable[[tvm.IRModule], tvm.IRModule]]  # (target, PassOptions) -> pass or function


def _relax(name: str, doc: str) -> NamedPass:
    return NamedPass(name, doc, lambda _target, _options: getattr(relax.transform, name)())


GRAPH_PASSES: list[NamedPass] = [
    NamedPass("LowerQDQToInteger", "int8 QDQ regions into integer-only ops (TFLM requantize)",
              lambda t, options: functools.partial(lower_qdq_to_integer, rounding=options.rounding,
                                                   target=t if options.kernels == "auto" else None,
                                                   weights=options.weights, sparse=options.sparse,
                                                   optimize=options.optimize)),
    NamedPass("CheckIntegerOnly", "an int8 model computes nothing in float", lambda _t, _o: check_integer_only),
    _relax("DecomposeOpsForInference", "BatchNorm and friends into elementwise ops"),
    _relax("LegalizeOps", "every Relax op into a TIR PrimFunc (TOPI compute)"),
    _relax("AnnotateTIROpPattern", "mark kernels as elementwise / injective / reduction"),
    _relax("FoldConstant", "evaluate what depends only on weights (BN folding, transposes)"),
    NamedPass("FuseOps", "group producers with their elementwise epilogues; note each group's source operators",
              lambda _t, _o: fuse_ops),
    _relax("FuseTIR", "merge each group into one PrimFunc"),
    _relax("DeadCodeElimination", "drop unused kernels and bindings"),
    _relax("RewriteDataflowReshape", "reshapes become zero-copy views"),
    _relax("ToNonDataflow", "flatten dataflow blocks"),
    _relax("RemovePurityChecking", "allow the explicit memory ops below"),
    _relax("CallTIRRewrite", "destination-passing calls with explicit output tensors"),
    _relax("StaticPlanBlockMemory", "static activation plan: storages and tensor offsets"),
]


def _stir(name: str, doc: str) -> NamedPass:
    return NamedPass(name, doc, lambda _target, _options: getattr(s_tir.transform, name)())


def _tirx(name: str, doc: str, *args) -> NamedPass:
    return NamedPass(name, doc, lambda _target, _options: getattr(tirx.transform, name)(*args))


def _unchanged(mod: tvm.IRModule) -> tvm.IRModule:
    return mod


def _partition_loops(mod: tvm.IRModule) -> tvm.IRModule:
    with tvm.transform.PassContext(config={"s_tir.LoopPartition": {"partition_const_loop": True}}):
        return s_tir.transform.LoopPartition()(mod)


KERNEL_PASSES: list[NamedPass] = [
    NamedPass("LeanSchedule", "bare metal: inline elementwise stages; no full-size intermediates",
              lambda t, _o: _unchanged if is_linux_target(t) else LeanSchedule()),
    NamedPass("VectorSchedule", "Linux (Cortex-A): NEON register tiles; a padded input copy",
              lambda t, _o: VectorSchedule() if is_linux_target(t) else _unchanged),
    _stir("CanonicalizeLoop", "loops start at zero"),
    _stir("LowerInitBlock", "reduction init into the loop body"),
    _stir("PlanAndUpdateBufferAllocationLocation", "allocate buffers at their narrowest scope"),
    _stir("ConvertBlocksToOpaque", "blocks to opaque statements"),
    _stir("CompactBufferAllocation", "shrink buffers to the region really used"),
    _stir("LowerMatchBuffer", "resolve buffer views"),
    _stir("LowerOpaqueBlock", "remove the remaining blocks"),
    _tirx("FlattenBuffer", "multi-dimensional buffers to flat arrays"),
    _tirx("NarrowDataType", "int64 indices to int32 (32-bit cores)", 32),
    NamedPass("NarrowIndexCasts", "int64 <-> float casts through int32: no mis-called libgcc helpers",
              lambda _t, _o: NarrowIndexCasts()),
    NamedPass("LoopPartition", "split border iterations off loops with likely() bounds (padding)",
              lambda _t, _o: _partition_loops),
    _tirx("VectorizeLoop", "vectorized loops to vector instructions", True),
    _tirx("StorageRewrite", "reuse local buffers"),
    _tirx("UnrollLoop", "unroll small constant loops"),
    _tirx("StmtSimplify", "arithmetic simplification"),
    _tirx("CommonSubexprElim", "share repeated index arithmetic"),
    NamedPass("PlainPointerSignature", "kernels as int32_t f(T *a, T *b, ...): no packed API",
              lambda target, _o: PlainPointerSignature(target)),
    _tirx("LowerTVMBuiltin", "large temporaries via TVMBackendAllocWorkspace"),
    NamedPass("ReturnZero", "kernels end with `return 0`, after their workspace frees", lambda _t, _o: ReturnZero()),
    _tirx("LowerIntrin", "math intrinsics for the target"),
    _tirx("SkipAssert", "no assertion strings on the device"),
]


def run_passes(mod: tvm.IRModule, passes: list[NamedPass], target,
               options: PassOptions = PassOptions()) -> tvm.IRModule:
    with target:
        for named in passes:
            mod = named.make(target, options)(mod)
    return mod


def describe(passes: list[NamedPass]) -> str:
    return "\n".join(f"{i:2d}. {p.name:<40} {p.doc}" for i, p in enumerate(passes, 1))
