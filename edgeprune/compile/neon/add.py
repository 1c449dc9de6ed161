"""TFLM's int8 add and sub on NEON, eight elements at a time: both inputs less their zero points,
shifted left, rescaled, summed (or subtracted) and requantized, each rescale with the vector
requantize (`requantize.py`), so the outputs equal the portable kernel's (`int8_kernels.add`)."""
from __future__ import annotations

import functools
import math
from dataclasses import replace

from tvm import tirx
from tvm.script import tirx as T

from edgeprune.compile.int8_kernels import Requantize, RescaleInput
from edgeprune.compile.neon.requantize import vector_requantize

LANES = 8


def takes(count: int) -> bool:
    """Whether an add of `count` elements (both inputs of one shape) runs here: whole vectors only."""
    return count % LANES == 0


@functools.cache  # see conv.conv2d
def add(shape: tuple[int, ...], inputs: tuple[RescaleInput, RescaleInput], left_shift: int, output_multiplier: int,
        output_shift: int, requantize: Requantize, subtract: bool, isa: str) -> tirx.PrimFunc:
    """The PrimFunc (a, b, y) of an int8 add (a + b) or sub (a - b) of two tensors of `shape`, on
    instruction set `isa` (gemm.ISAS)."""
    count = math.prod(shape)
    rescales = [vector_requantize(replace(requantize.unclamped(), negative_shifts=spec.shift < 0), isa)
                for spec in inputs]
    output = vector_requantize(replace(requantize, negative_shifts=output_shift < 0), isa)

    def term(values, spec: RescaleInput, rescale):
        shifted = T.shift_left(T.Cast("int32x8", values) - T.Broadcast(T.int32(spec.zero_point), LANES),
                               T.Broadcast(T.int32(left_shift), LANES))
        return rescale(shifted, T.int32(spec.multiplier), T.int32(spec.shift))

    @T.prim_func
    def kernel(a_in: T.Buffer(shape, "int8"), b_in: T.Buffer(shape, "int8"), y_out: T.Buffer(shape, "int8")):
        a = T.decl_buffer((count,), "int8", data=a_in.data)
        b = T.decl_buffer((count,), "int8", data=b_in.data)
        y = T.decl_buffer((count,), "int8", data=y_out.data)
        for v in range(count // LANES):
            first = T.meta_var(term(a[T.Ramp(v * LANES, 1, LANES)], inputs[0], rescales[0]))
            second = T.meta_var(term(b[T.Ramp(v * LANES, 1, LANES)], inputs[1], rescales[1]))
            y[T.Ramp(v * LANES, 1, LANES)] = output(first - second if subtract else first + second,
                                                    T.int32(output_multiplier), T.int32(output_shift))

    return kernel
