"""int8 dense layer (x [M, K] times weights [N, K]) on MVE. A dense layer reads each weight once,
so nothing stays in vector registers between outputs: per chunk of 16 reduction elements the
kernel loads 16 inputs once and, for each output of a tile, 16 weights, and adds their 16 products
to the output's int32 sum with one VMLADAVA.S8. Weights stay int8, laid out at compile time
(`pack_weights`) in the DSP dense kernel's tile order (tiles of dsp.dense.ROWS outputs, then each
remaining output alone), chunk by chunk, so every load is one VLDRB.8 of 16 contiguous bytes. A
row's last partial chunk is copied into a zero-padded vector. The bias (which holds the input
offset) and the requantize are the DSP dense kernel's: its table of per-output constants and, where
the compiler proves it exact, its short requantize (dsp.dense.constants)."""
from __future__ import annotations

import functools
import math

import numpy as np
from tvm import tirx
from tvm.script import tirx as T

from edgeprune.compile.dsp.dense import ROWS, by_tile, storer
from edgeprune.compile.dsp.intrinsics import qadd
from edgeprune.compile.int8_kernels import Requantize
from edgeprune.compile.mve.intrinsics import vmladava
from edgeprune.compile.neon.dense import partial_chunk

CHUNK = 16  # reduction elements per VMLADAVA.S8: one int8x16 vector


def pack_weights(weight: np.ndarray) -> np.ndarray:
    """Weights [N, K] as the kernel reads them: rows zero-padded to whole chunks, then per tile
    (`dsp.dense.by_tile`) chunk by chunk, the tile's rows side by side (int8)."""
    count, depth = weight.shape
    chunks = -(-depth // CHUNK)
    padded = np.zeros((count, chunks * CHUNK), np.int8)
    padded[:, :depth] = weight
    return by_tile(padded.reshape(count, chunks, CHUNK))


@functools.cache  # see dsp.conv.conv2d
def dense(x_shape: tuple[int, ...], outputs: int, requantize: Requantize, fast: bool) -> tirx.PrimFunc:
    """The PrimFunc (x, packed weights, the table of dsp.dense.constants, y) of a dense layer on x
    of `x_shape` (..., K) with `outputs` outputs per row; `fast` as that table's constants found."""
    depth, rows = x_shape[-1], math.prod(x_shape[:-1])
    chunks, full, rest = -(-depth // CHUNK), depth // CHUNK, depth % CHUNK
    whole = outputs // ROWS * ROWS
    store = storer(requantize, fast)

    @T.macro
    def tile(x, last, w, table, y, acc, r, c0, size):
        """Outputs c0.. (`size`) of row r: their sums, chunk by chunk, then the requantize."""
        for c in T.unroll(size):  # the bias (doubled in the fast table: halved, exactly)
            acc[c] = table[c0 * 4 + c] >> 1 if fast else table[c0 * 4 + c]
        for j in range(full):
            inputs = T.meta_var(x[T.Ramp(r * depth + j * CHUNK, 1, CHUNK)])
            for c in T.unroll(size):
                acc[c] = vmladava(acc[c], w[T.Ramp((c0 * chunks + j * size + c) * CHUNK, 1, CHUNK)], inputs)
        if rest != 0:
            for c in T.unroll(size):
                acc[c] = vmladava(acc[c], w[T.Ramp((c0 * chunks + full * size + c) * CHUNK, 1, CHUNK)],
                                  last[T.Ramp(0, 1, CHUNK)])
        for c in T.unroll(size):  # the fast requantize takes twice the sum, doubled by QADD (which
            # never saturates there): an int32 add, LLVM would widen into the 64-bit multiply
            store(y, r * outputs + c0 + c, qadd(acc[c], acc[c]) if fast else acc[c], table, c0, size, c)

    @T.prim_func
    def kernel(x_in: T.Buffer(x_shape, "int8"), w: T.Buffer((outputs * chunks * CHUNK,), "int8"),
               table: T.Buffer((outputs * 4,), "int32"), y_out: T.Buffer((*x_shape[:-1], outputs), "int8")):
        x = T.decl_buffer((rows * depth,), "int8", data=x_in.data)
        y = T.decl_buffer((rows * outputs,), "int8", data=y_out.data)
        last = T.decl_buffer((CHUNK,), "int8", align=16)  # the row's partial chunk, zero-padded
        for r in range(rows):
            if rest != 0:
                partial_chunk(last, x, r * depth + full * CHUNK, rest)
            for t in range(whole // ROWS):
                acc = T.decl_buffer((ROWS,), "int32")
                tile(x, last, w, table, y, acc, r, t * ROWS, ROWS)
            for n in range(whole, outputs):
                one = T.decl_buffer((1,), "int32")
                tile(x, last, w, table, y, one, r, n, 1)

    return kernel
