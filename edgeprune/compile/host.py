"""A model's graph built for the host CPU and run in TVM's Relax VM: the reference an int8 device
must equal bit for bit. It is the same integer graph (QDQ regions lowered to integer-only ops by
the same pass, with the same rounding), so any difference comes from the device build."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import onnx
import tvm
from tvm import relax

from edgeprune.compile.api import CompiledModel
from edgeprune.compile.frontend import to_relax
from edgeprune.compile.int8 import lower_qdq_to_integer
from edgeprune.compile.integer_guard import check_integer_only

# TIR passes that take most of a host build's time and change nothing a reference needs: the
# first two on padded convolutions (ResNet-8's integer graph built in 30 s with them, 6 s
# without), then the statement simplifiers on the requantizing kernels (4.6 -> 1.2 s, the same
# outputs). The build runs as fast without them all (10 ms an inference).
SLOW_HOST_PASSES = ["s_tir.HoistIfThenElse", "tirx.RemoveNoOp", "tirx.StmtSimplify", "s_tir.StmtSimplify"]
# LLVM's -O1 builds that graph in 0.75 s instead of -O3's 1.7 s, and it runs as fast.
HOST_TARGET = {"kind": "llvm", "opt-level": 1}


def host_build(model: onnx.ModelProto, rounding: str = "double") -> Callable[..., list[np.ndarray]]:
    """The graph of an ONNX model (a QDQ model with int8 edges becomes its integer graph), built
    for the host; the function returns every output."""
    return host_graph(to_relax(model), rounding)


def host_graph(mod: tvm.IRModule, rounding: str = "double") -> Callable[..., list[np.ndarray]]:
    """An imported Relax module (any front end) lowered to its integer graph and built for the host."""
    graph = check_integer_only(lower_qdq_to_integer(mod, rounding))
    with tvm.transform.PassContext(disabled_pass=SLOW_HOST_PASSES):
        main = relax.VirtualMachine(tvm.compile(graph, target=tvm.target.Target(HOST_TARGET)), tvm.cpu())["main"]

    def run(*inputs: np.ndarray) -> list[np.ndarray]:
        result = main(*(tvm.runtime.tensor(np.ascontiguousarray(x)) for x in inputs))
        return [t.numpy() for t in ([result] if hasattr(result, "numpy") else result)]

    return run


def host_outputs(model: CompiledModel, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """What a compiled model's graph computes on the host, with the rounding it was compiled with."""
    rounding = model.manifest.get("options", {}).get("rounding", "double")
    return host_build(onnx.load(model.onnx), rounding)(*inputs)
