"""int8 dense layer (x [M, K] times weights [N, K]) with 2:4 weights: at most two non-zero weights
in every block of four along K (`edgeprune prune --pattern 2:4`), stored as those two weights and
which two positions they hold.

Per row of x, the kernel builds a table of int16 input pairs: for every block and each of the six
position pairs (i < j), the word (x[4b + i], x[4b + j]). Then per output and two blocks: one
weight word (bytes: block b's first, block b+1's first, b's second, b+1's second; SXTB16 and
SXTB16 ROR #8 give each block's pair), two table offsets (a byte each: the pair's number, 6 added
for the odd block), two table loads and two SMLAD. Storage: 3 bytes a block against the dense int8
layout's 4."""
from __future__ import annotations

import functools
import itertools
import math

import numpy as np
from tvm import tirx
from tvm.script import tirx as T

from edgeprune.compile.dsp.intrinsics import smlad, sxtb16, sxtb16_odd
from edgeprune.compile.int8_kernels import Requantize

PAIRS = tuple(itertools.combinations(range(4), 2))  # the six position pairs of a block


def blocks_of(depth: int) -> int:
    """Blocks of four along K, rounded up to an even number (the kernel takes two at a time)."""
    return -(-depth // 8) * 2


def is_two_of_four(weight: np.ndarray) -> bool:
    """Whether every block of four along K of `weight` [N, K] holds at most two non-zero weights."""
    padded = np.zeros((weight.shape[0], blocks_of(weight.shape[1]) * 4), weight.dtype)
    padded[:, :weight.shape[1]] = weight
    return bool(((padded.reshape(weight.shape[0], -1, 4) != 0).sum(axis=2) <= 2).all())


def pack(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(weight words int32 [N * blocks / 2], table offsets uint8 [N * blocks]) of a 2:4 `weight` [N, K]."""
    outputs, depth = weight.shape
    count = blocks_of(depth)
    blocks = np.zeros((outputs, count * 4), np.int8)
    blocks[:, :depth] = weight
    blocks = blocks.reshape(outputs, count, 4)
    pair_of = {pair: number for number, pair in enumerate(PAIRS)}
    offsets = np.zeros((outputs, count), np.uint8)
    firsts, seconds = np.zeros((outputs, count), np.int8), np.zeros((outputs, count), np.int8)
    for n, b in np.ndindex(outputs, count):
        kept = tuple(np.flatnonzero(blocks[n, b]))
        pair = next(p for p in PAIRS if set(kept) <= set(p))
        offsets[n, b] = pair_of[pair] + 6 * (b % 2)
        firsts[n, b], seconds[n, b] = blocks[n, b, pair[0]], blocks[n, b, pair[1]]
    words = np.stack([firsts[:, 0::2], firsts[:, 1::2], seconds[:, 0::2], seconds[:, 1::2]], axis=-1)
    return np.ascontiguousarray(words).view(np.int32).reshape(-1), offsets.reshape(-1)


@functools.cache  # see conv.conv2d
def nm_dense(x_shape: tuple[int, ...], outputs: int, requantize: Requantize) -> tirx.PrimFunc:
    """The PrimFunc (x, weight words, offsets, bias, multiplier, shift, y) of a 2:4 dense layer on x
    of `x_shape` (..., K) with `outputs` outputs per row (`pack`)."""
    depth = x_shape[-1]
    rows = math.prod(x_shape[:-1])
    count = blocks_of(depth)
    y_shape = (*x_shape[:-1], outputs)

    def lane(x, r, k):
        """x[r, k] as an int32 (0 past the row's end)."""
        return T.if_then_else(k < depth, T.Cast("int32", x[r * depth + T.min(k, depth - 1)]), 0)

    def pair(x, r, b, s: int):
        """Block b's input pair number s as an int16 pair."""
        i, j = PAIRS[s]
        return T.bitwise_or(T.bitwise_and(lane(x, r, b * 4 + i), 0xFFFF), T.shift_left(lane(x, r, b * 4 + j), 16))

    @T.prim_func
    def kernel(x_in: T.Buffer(x_shape, "int8"), w: T.Buffer((outputs * count // 2,), "int32"),
               offsets: T.Buffer((outputs * count,), "uint8"), bias: T.Buffer((outputs,), "int32"),
               multiplier: T.Buffer((outputs,), "int32"), shift: T.Buffer((outputs,), "int8"),
               y_out: T.Buffer(y_shape, "int8")):
        x = T.decl_buffer((rows * depth,), "int8", data=x_in.data)
        y = T.decl_buffer((rows * outputs,), "int8", data=y_out.data)
        acc = T.decl_buffer((1,), "int32")
        table = T.decl_buffer((count * 6,), "int32")
        for r in range(rows):
            for b in range(count):
                table[b * 6] = pair(x, r, b, 0)
                table[b * 6 + 1] = pair(x, r, b, 1)
                table[b * 6 + 2] = pair(x, r, b, 2)
                table[b * 6 + 3] = pair(x, r, b, 3)
                table[b * 6 + 4] = pair(x, r, b, 4)
                table[b * 6 + 5] = pair(x, r, b, 5)
            for n in range(outputs):
                acc[0] = bias[n]
                for h in range(count // 2):
                    acc[0] = smlad(table[h * 12 + T.Cast("int32", offsets[n * count + h * 2])],
                                   sxtb16(w[n * count // 2 + h]), acc[0])
                    acc[0] = smlad(table[h * 12 + T.Cast("int32", offsets[n * count + h * 2 + 1])],
                                   sxtb16_odd(w[n * count // 2 + h]), acc[0])
                y[r * outputs + n] = requantize(acc[0], multiplier[n], shift[n])

    return kernel
