"""int8 dense layer (x [M, K] times weights [N, K], M usually 1) on NEON, as matrix-vector products.

A dense layer reads each weight once, so there is nothing to keep in registers but the sums:
weights stay int8, packed at compile time in tiles of BLOCK outputs x CHUNK reduction elements
(`pack_weights`), and per chunk the kernel loads 16 input bytes once and, per output, 16 weight
bytes into one int32x4 of partial sums:
- "aarch64", "armv7": `SMULL` of the low halves, `SMLAL2` of the high halves into the same int16
  lanes, then `SADALP` (`VMULL.S8`/`VMLAL.S8`/`VPADAL.S16` on armv7): 4 instructions per 16 MACs.
  Two products share an int16 lane only when no weight is -128 (|w| <= 127 keeps the sum of two
  products of an int8 input within int16); a layer with a -128 weight (an imported model may
  have one) accumulates each half on its own (`SADALP` twice).
- "dotprod": one `SDOT` per 16 MACs.
The BLOCK sums of a tile are then added pairwise into one int32x8, the bias (which holds the input
offset) added, and requantized per lane with TFLM's arithmetic (`requantize.py`)."""
from __future__ import annotations

import functools
import math

import numpy as np
from tvm import tirx
from tvm.script import tirx as T

from edgeprune.compile.int8_kernels import Requantize
from edgeprune.compile.neon.requantize import vector_requantize

BLOCK = 8  # outputs per tile: one int32x8 to requantize
CHUNK = 16  # reduction elements per step: one int8x16 vector
# outputs per pass over the reduction: four on armv7, whose 16 vector registers spill eight
# outputs' sums and products
ROWS = {"armv7": 4, "aarch64": 8, "dotprod": 8}
# chunks per pass of the reduction loop: LLVM unrolls aarch64's by itself, not armv7's
UNROLL = {"armv7": 2, "aarch64": 1, "dotprod": 1}
_LOW, _HIGH = list(range(8)), list(range(8, 16))
_PAIRWISE = {  # pairwise add of int16x8 into int32x4 (acc, value) -> acc, per instruction set
    "aarch64": lambda acc, v: acc + T.call_llvm_pure_intrin("int32x4", "llvm.aarch64.neon.saddlp.v4i32.v8i16", v),
    "armv7": lambda acc, v: T.call_llvm_pure_intrin("int32x4", "llvm.arm.neon.vpadals.v4i32.v8i16", acc, v),
}


def padded_outputs(outputs: int) -> int:
    """Outputs rounded up to whole tiles: the length of the packed bias, multiplier and shift."""
    return -(-outputs // BLOCK) * BLOCK


def pack_weights(rows: np.ndarray, isa: str) -> np.ndarray:
    """Weights [N, K] as the kernel reads them on `isa`, int8 [N / R, K / CHUNK, R, CHUNK] flat
    with R = ROWS[isa] (zero rows pad the last tile, zero columns the last chunk)."""
    count, depth = rows.shape
    chunks = -(-depth // CHUNK)
    padded = np.zeros((padded_outputs(count), chunks * CHUNK), np.int8)
    padded[:count, :depth] = rows
    return padded.reshape(-1, ROWS[isa], chunks, CHUNK).transpose(0, 2, 1, 3).reshape(-1).copy()


def pad_channels(values: np.ndarray) -> np.ndarray:
    """A per-output constant (bias, multiplier, shift) padded with zeros to whole tiles."""
    padded = np.zeros(padded_outputs(len(values)), values.dtype)
    padded[:len(values)] = values
    return padded


def pairs_are_exact(rows: np.ndarray) -> bool:
    """Whether two int8 products may share an int16 lane: no weight is -128."""
    return bool(rows.min() > -128)


def _accumulate(isa: str, paired: bool):
    """(acc int32x4, w int8x16, x int8x16) -> acc plus the 16 products, as int32 lane sums."""
    if isa == "dotprod":
        return lambda acc, w, x: T.call_llvm_pure_intrin("int32x4", "llvm.aarch64.neon.sdot.v4i32.v16i8", acc, w, x)
    pairwise = _PAIRWISE[isa]

    def products(w, x, lanes):
        return T.Cast("int16x8", T.Shuffle([w], lanes)) * T.Cast("int16x8", T.Shuffle([x], lanes))

    if paired:
        return lambda acc, w, x: pairwise(acc, products(w, x, _LOW) + products(w, x, _HIGH))
    return lambda acc, w, x: pairwise(pairwise(acc, products(w, x, _LOW)), products(w, x, _HIGH))


def _sum_pairs(a, b):
    """[a0 + a1, a2 + a3, b0 + b1, b2 + b3] of two int32x4 (ADDP)."""
    return T.Shuffle([a, b], [0, 2, 4, 6]) + T.Shuffle([a, b], [1, 3, 5, 7])


@T.macro
def partial_chunk(last, x, start, rest):
    """A row's last `rest` reduction elements, x[start:start + rest], into the 16-lane vector
    `last`, zero-padded (the dense kernels' last chunk)."""
    last[T.Ramp(0, 1, CHUNK)] = T.Broadcast(T.int8(0), CHUNK)
    for i in range(rest):
        last[i] = x[start + i]


@functools.cache  # see conv.conv2d
def dense(x_shape: tuple[int, ...], outputs: int, requantize: Requantize, isa: str, paired: bool) -> tirx.PrimFunc:
    """The PrimFunc (x, packed weights, bias, multiplier, shift, y) of a dense layer on x of
    `x_shape` (..., K) with `outputs` outputs per row, on instruction set `isa` (gemm.ISAS); the
    per-output constants padded to whole tiles (`pad_channels`). `paired`: no weight is -128."""
    depth, rows = x_shape[-1], math.prod(x_shape[:-1])
    chunks, full, rest = -(-depth // CHUNK), depth // CHUNK, depth % CHUNK
    blocks, padded, per_pass = -(-outputs // BLOCK), padded_outputs(outputs), ROWS[isa]
    unroll = UNROLL[isa]
    accumulate = _accumulate(isa, paired)
    requantize_vector = vector_requantize(requantize, isa, per_lane=True)

    @T.macro
    def step(x, w, acc, g, h, j, start):
        """Chunk j of the outputs of weight group g into the sums of pass h."""
        inputs = T.meta_var(x[T.Ramp(start, 1, CHUNK)])
        for o in T.unroll(per_pass):
            acc[T.Ramp((h * per_pass + o) * 4, 1, 4)] = accumulate(
                acc[T.Ramp((h * per_pass + o) * 4, 1, 4)], w[T.Ramp(((g * chunks + j) * per_pass + o) * CHUNK, 1, CHUNK)],
                inputs)

    @T.macro
    def tile(x, last, w, bias, multiplier, shift, y, acc, tail, r, b, count):
        for h in T.unroll(BLOCK // per_pass):  # passes over the reduction
            for o in T.unroll(per_pass):
                acc[T.Ramp((h * per_pass + o) * 4, 1, 4)] = T.Broadcast(T.int32(0), 4)
            for j0 in range(full // unroll):
                for u in T.unroll(unroll):
                    step(x, w, acc, b * BLOCK // per_pass + h, h, j0 * unroll + u, r * depth + (j0 * unroll + u) * CHUNK)
            for u in T.unroll(full % unroll):
                step(x, w, acc, b * BLOCK // per_pass + h, h, full // unroll * unroll + u,
                     r * depth + (full // unroll * unroll + u) * CHUNK)
            if rest != 0:
                step(last, w, acc, b * BLOCK // per_pass + h, h, full, 0)
        quads = T.meta_var([acc[T.Ramp(o * 4, 1, 4)] for o in range(BLOCK)])
        sums = T.meta_var(T.Shuffle([_sum_pairs(_sum_pairs(quads[0], quads[1]), _sum_pairs(quads[2], quads[3])),
                                     _sum_pairs(_sum_pairs(quads[4], quads[5]), _sum_pairs(quads[6], quads[7]))],
                                    list(range(BLOCK))))
        out = T.meta_var(requantize_vector(sums + bias[T.Ramp(b * BLOCK, 1, BLOCK)],
                                           multiplier[T.Ramp(b * BLOCK, 1, BLOCK)], shift[T.Ramp(b * BLOCK, 1, BLOCK)]))
        if count == BLOCK:
            y[T.Ramp(r * outputs + b * BLOCK, 1, BLOCK)] = out
        else:
            tail[T.Ramp(0, 1, BLOCK)] = out
            for i in T.unroll(count):
                y[r * outputs + b * BLOCK + i] = tail[i]

    @T.prim_func
    def kernel(x_in: T.Buffer(x_shape, "int8"), w: T.Buffer((blocks * chunks * BLOCK * CHUNK,), "int8"),
               bias: T.Buffer((padded,), "int32"), multiplier: T.Buffer((padded,), "int32"),
               shift: T.Buffer((padded,), "int8"), y_out: T.Buffer((*x_shape[:-1], outputs), "int8")):
        x = T.decl_buffer((rows * depth,), "int8", data=x_in.data)
        y = T.decl_buffer((rows * outputs,), "int8", data=y_out.data)
        last = T.decl_buffer((CHUNK,), "int8")  # the reduction's partial chunk, zero-padded
        acc = T.decl_buffer((BLOCK * 4,), "int32")
        tail = T.decl_buffer((BLOCK,), "int8")
        for r in range(rows):
            if rest != 0:
                partial_chunk(last, x, r * depth + full * CHUNK, rest)
            for b in range(outputs // BLOCK):
                tile(x, last, w, bias, multiplier, shift, y, acc, tail, r, b, BLOCK)
            if outputs % BLOCK != 0:
                tile(x, last, w, bias, multiplier, shift, y, acc, tail, r, blocks - 1, outputs % BLOCK)

    return kernel
