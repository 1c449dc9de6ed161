"""int8 dense layer (x [M, K] times weights [N, K]) as a GEMM. A dense layer reads each weight
once per row of x, so its weights are int8 by default, widened in the loop (int16 weights, twice
the flash, save those SXTB16s). Each row of x is widened once into an int16 column in the
weights' lane order (`packing.column_slot`), then the micro-kernel (`gemm.py`) runs over the
outputs, four at a time."""
from __future__ import annotations

import functools
import math

from tvm import tirx
from tvm.script import tirx as T

from edgeprune.compile.dsp.gemm import Gemm
from edgeprune.compile.dsp.intrinsics import sxtb16, sxtb16_odd
from edgeprune.compile.dsp.packing import column_slot, padded_length
from edgeprune.compile.int8_kernels import Requantize

ROWS = 4  # output channels per tile


@functools.cache  # see conv.conv2d
def dense(x_shape: tuple[int, ...], outputs: int, requantize: Requantize, layout: str) -> tirx.PrimFunc:
    """The PrimFunc (x, packed weights, bias, multiplier, shift, groups, y) of a dense layer on x
    of `x_shape` (..., K) with `outputs` outputs per row and weights in `layout` (packing.LAYOUTS)."""
    depth = x_shape[-1]
    rows = math.prod(x_shape[:-1])
    padded = padded_length(depth)
    tile = Gemm(padded, layout, 1, outputs, requantize).tile()
    words = depth % 4 == 0 and layout == "int8"  # a word of x widens into two column words as they are
    y_shape = (*x_shape[:-1], outputs)

    @T.prim_func
    def kernel(x_in: T.Buffer(x_shape, "int8"), w_in: T.Buffer((outputs * padded,), layout),
               bias: T.Buffer((outputs,), "int32"), multiplier: T.Buffer((outputs,), "int32"),
               shift: T.Buffer((outputs,), "int8"), groups: T.Buffer((1,), "int32"),
               y_out: T.Buffer(y_shape, "int8")):
        x = T.decl_buffer((rows * depth,), "int8", data=x_in.data)
        x32 = T.decl_buffer((rows * depth // 4,), "int32", data=x_in.data)
        w = T.decl_buffer((outputs * padded // 4,), "int64" if layout == "int16" else "int32", data=w_in.data)
        y = T.decl_buffer((rows * outputs,), "int8", data=y_out.data)
        acc = T.decl_buffer((ROWS,), "int32")
        col16 = T.decl_buffer((padded,), "int16")
        col32 = T.decl_buffer((padded // 2,), "int32", data=col16.data)
        col = T.decl_buffer((padded // 4,), "int64", data=col16.data)
        for k in T.unroll(padded - depth):
            col16[column_slot(depth + k, layout)] = T.int16(0)
        for r in range(rows):
            if words:
                for g in range(depth // 4):
                    col32[g * 2] = sxtb16(x32[r * depth // 4 + g])
                    col32[g * 2 + 1] = sxtb16_odd(x32[r * depth // 4 + g])
            else:
                for k in range(depth):
                    col16[column_slot(k, layout)] = T.Cast("int16", x[r * depth + k])
            for n in range(outputs // ROWS):
                tile(col, w, bias, multiplier, shift, y, acc, groups, n * ROWS, r, ROWS, 1)
            for n in range(outputs // ROWS * ROWS, outputs):
                tile(col, w, bias, multiplier, shift, y, acc, groups, n, r, 1, 1)

    return kernel
