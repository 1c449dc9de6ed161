"""The GEMM micro-kernel of the NEON convolutions: a tile of output channels x PIXELS pixels.

Weights are packed at compile time into blocks of `block` output channels, reduction-major
([blocks, K, block] int16, `pack_blocks`): one vector load gives a reduction step's weights for
the whole block. The input is an int16 matrix [K, columns] (columns: the pixels rounded up to a
multiple of PIXELS). Per reduction step the tile loads one input vector and one weight vector and
issues two SMLAL per channel (8 pixels x 1 channel, by lane), so `block` x 8 int32 accumulators
stay in registers: 8 channels on aarch64 (16 of its 32 vector registers), 4 on armv7 (8 of 16)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tvm.script import tirx as T

from edgeprune.compile.int8_kernels import Requantize
from edgeprune.compile.neon.requantize import vector_requantize

PIXELS = 8  # output pixels per tile: one int16x8 input vector
UNROLL = 4  # reduction steps per pass of the loop (LLVM unrolls it for the A53, not for the A72)


def channel_block(aarch64: bool) -> int:
    """Output channels per tile: 8 where there are 32 vector registers (aarch64), else 4 (armv7)."""
    return 8 if aarch64 else 4


def pack_blocks(rows: np.ndarray, block: int) -> np.ndarray:
    """Weights [N, K] as int16 blocks [ceil(N / block), K, block] (zero rows pad the last block), flat."""
    count, depth = rows.shape
    blocks = -(-count // block)
    padded = np.zeros((blocks * block, depth), np.int16)
    padded[:count] = rows
    return padded.reshape(blocks, block, depth).transpose(0, 2, 1).reshape(-1).copy()


def padded_pixels(pixels: int) -> int:
    """The input matrix's row length: pixels rounded up to whole tiles."""
    return -(-pixels // PIXELS) * PIXELS


@dataclass(frozen=True)
class Gemm:
    """One layer's GEMM: reduction `depth`, input rows of `columns` int16, on aarch64 or armv7 (the
    weight blocks' channels and the requantize's instructions); output (channel c, pixel p) goes
    to y[c * channel_stride + p]."""

    depth: int
    columns: int
    aarch64: bool
    channel_stride: int
    requantize: Requantize

    def tile(self):
        """A TIR macro: tile(col, w, bias, multiplier, shift, y, acc, tail, c0, p0, channels, pixels)
        computes `channels` output channels from c0 (c0 a multiple of `block`) for `pixels` (<= 8)
        pixels from p0. `acc` is a local int32 buffer of block x 8, `tail` a local int8 buffer of 8
        (a partial tile's outputs before they are stored one by one)."""
        depth, columns, cs = self.depth, self.columns, self.channel_stride
        block, requantize = channel_block(self.aarch64), vector_requantize(self.requantize, self.aarch64)

        @T.macro
        def step(col, w, acc, c0, p0, channels, k):
            weights = T.meta_var(w[T.Ramp((c0 * depth) + k * block, 1, block)])
            inputs = T.meta_var(T.Cast("int32x8", col[T.Ramp(k * columns + p0, 1, PIXELS)]))
            for c in T.unroll(channels):
                acc[T.Ramp(c * PIXELS, 1, PIXELS)] = acc[T.Ramp(c * PIXELS, 1, PIXELS)] + inputs * T.Cast(
                    "int32x8", T.Shuffle([weights] * (PIXELS // block), [c] * PIXELS))

        @T.macro
        def tile(col, w, bias, multiplier, shift, y, acc, tail, c0, p0, channels, pixels):
            for c in T.unroll(channels):
                acc[T.Ramp(c * PIXELS, 1, PIXELS)] = T.Broadcast(bias[c0 + c], PIXELS)
            for k0 in range(depth // UNROLL):
                for u in T.unroll(UNROLL):
                    step(col, w, acc, c0, p0, channels, k0 * UNROLL + u)
            for u in T.unroll(depth % UNROLL):
                step(col, w, acc, c0, p0, channels, depth // UNROLL * UNROLL + u)
            for c in T.unroll(channels):
                out = T.meta_var(requantize(acc[T.Ramp(c * PIXELS, 1, PIXELS)], multiplier[c0 + c], shift[c0 + c]))
                if pixels == PIXELS:
                    y[T.Ramp((c0 + c) * cs + p0, 1, PIXELS)] = out
                else:
                    tail[T.Ramp(0, 1, PIXELS)] = out
                    for i in T.unroll(pixels):
                        y[(c0 + c) * cs + p0 + i] = tail[i]

        return tile
