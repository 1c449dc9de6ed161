"""A compiled model's graph built for the host CPU and run in TVM's Relax VM: the reference an
int8 device must equal bit for bit. It is the same integer graph (QDQ regions lowered to
integer-only ops by the same pass), so any difference comes from the device build."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import onnx
import tvm
from tvm import relax

from edgeprune.compile.api import CompiledModel
from edgeprune.compile.frontend import to_relax
from edgeprune.compile.int8 import lower_qdq_to_integer


def host_outputs(model: CompiledModel, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """What the model's integer graph (or float graph, if it has no QDQ) computes on the host."""
    graph = lower_qdq_to_integer(to_relax(onnx.load(model.onnx)))
    main = relax.VirtualMachine(tvm.compile(graph, target="llvm"), tvm.cpu())["main"]
    result = main(*(tvm.runtime.tensor(np.ascontiguousarray(x)) for x in inputs))
    return [t.numpy() for t in ([result] if hasattr(result, "numpy") else result)]
