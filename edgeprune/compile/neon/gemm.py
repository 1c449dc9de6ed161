"""The GEMM micro-kernel of the NEON convolutions: a tile of output channels x PIXELS pixels, on
one of three instruction sets (`ISAS`).

- "aarch64" and "armv7": weights are packed at compile time into int16 blocks of `block` output
  channels, reduction-major ([blocks, K, block], `pack_weights`): one vector load gives a
  reduction step's weights for the whole block. The input is an int16 matrix [K, columns]
  (columns: the pixels rounded up to a multiple of PIXELS). Per reduction step the tile loads one
  input vector and one weight vector and issues two SMLAL per channel (8 pixels x 1 channel, by
  lane; VMLAL.S16 by scalar on armv7), so `block` x 8 int32 accumulators stay in registers: 8
  channels on aarch64 (16 of its 32 vector registers), 4 on armv7 (8 of 16).
- "dotprod" (aarch64 cores with the dot-product extension: A55, A76, ...): weights and input stay
  int8, in groups of four reduction elements: weights [blocks, K/4, 8, 4], input [K/4, columns, 4].
  Per group the tile loads two input vectors (4 pixels x 4 elements each) and two weight vectors
  and issues two SDOT per channel (by lane): 16 MACs per instruction, four times SMLAL's."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tvm.script import tirx as T

from edgeprune.compile.int8_kernels import Requantize
from edgeprune.compile.neon.requantize import HALVES, vector_requantize

ISAS = ("armv7", "aarch64", "dotprod")
PIXELS = 8  # output pixels per tile: one int16x8 input vector (two int8x16 groups with SDOT)
# reduction steps per pass of the loop (LLVM leaves it rolled for the A72 and the A7); armv7's 16
# vector registers hold four steps' inputs since its weights stay in a D register (VMLAL by scalar)
UNROLL = 4
GROUP = 4  # reduction elements per SDOT lane


def channel_block(isa: str) -> int:
    """Output channels per tile: 8 where there are 32 vector registers (aarch64), else 4 (armv7)."""
    return 4 if isa == "armv7" else 8


def steps(depth: int, isa: str) -> int:
    """Reduction steps of the tile: elements, or groups of four with SDOT."""
    return -(-depth // GROUP) if isa == "dotprod" else depth


def pack_weights(rows: np.ndarray, isa: str) -> np.ndarray:
    """Weights [N, K] as the tile reads them (zero rows pad the last block, zero elements the last
    group), flat: int16 [blocks, K, block], or int8 [blocks, K/4, block, 4] with SDOT."""
    count, depth = rows.shape
    block, group = channel_block(isa), GROUP if isa == "dotprod" else 1
    blocks, length = -(-count // block), steps(depth, isa) * group
    padded = np.zeros((blocks * block, length), np.int8 if isa == "dotprod" else np.int16)
    padded[:count, :depth] = rows
    return padded.reshape(blocks, block, length // group, group).transpose(0, 2, 1, 3).reshape(-1).copy()


def multiply_add_s16(acc, inputs, weight):
    """acc (int32x8) plus inputs (int16x8) times weight (int16x4, one value in every lane) as
    armv7's two VMLAL.S16, by scalar where the weight is a lane of a D register: LLVM otherwise
    widens or duplicates the weight first."""
    return T.Shuffle([T.Shuffle([acc], lanes) + T.call_llvm_pure_intrin(
        "int32x4", "llvm.arm.neon.vmulls.v4i32", T.Shuffle([inputs], lanes), weight) for lanes in HALVES],
        list(range(PIXELS)))


def padded_pixels(pixels: int) -> int:
    """The input matrix's row length: pixels rounded up to whole tiles."""
    return -(-pixels // PIXELS) * PIXELS


def input_slot(k, p, columns: int, isa: str):
    """Where reduction element k of pixel p goes in the input matrix (ints or TIR expressions)."""
    if isa == "dotprod":
        return ((k // GROUP) * columns + p) * GROUP + k % GROUP
    return k * columns + p


@dataclass(frozen=True)
class Gemm:
    """One layer's GEMM: reduction `depth`, input rows of `columns` pixels, on instruction set
    `isa`; output (channel c, pixel p) goes to y[c * channel_stride + p]."""

    depth: int
    columns: int
    isa: str
    channel_stride: int
    requantize: Requantize

    def tile(self):
        """A TIR macro: tile(col, w, bias, multiplier, shift, y, acc, tail, c0, p0, channels, pixels)
        computes `channels` output channels from c0 (c0 a multiple of `block`) for `pixels` (<= 8)
        pixels from p0. `acc` is a local int32 buffer of block x 8, `tail` a local int8 buffer of 8
        (a partial tile's outputs before they are stored one by one)."""
        columns, cs, isa = self.columns, self.channel_stride, self.isa
        block, count, unroll = channel_block(isa), steps(self.depth, isa), UNROLL
        requantize = vector_requantize(self.requantize, isa)

        @T.macro
        def multiply_add(col, w, acc, c0, p0, channels, k):
            weights = T.meta_var(w[T.Ramp((c0 * count) + k * block, 1, block)])
            inputs = T.meta_var(T.Cast("int32x8", col[T.Ramp(k * columns + p0, 1, PIXELS)]))
            for c in T.unroll(channels):
                acc[T.Ramp(c * PIXELS, 1, PIXELS)] = acc[T.Ramp(c * PIXELS, 1, PIXELS)] + inputs * T.Cast(
                    "int32x8", T.Shuffle([weights] * (PIXELS // block), [c] * PIXELS))

        @T.macro
        def multiply_add_by_scalar(col, w, acc, c0, p0, channels, k):
            weights = T.meta_var(w[T.Ramp((c0 * count) + k * block, 1, block)])
            inputs = T.meta_var(col[T.Ramp(k * columns + p0, 1, PIXELS)])
            for c in T.unroll(channels):
                acc[T.Ramp(c * PIXELS, 1, PIXELS)] = multiply_add_s16(acc[T.Ramp(c * PIXELS, 1, PIXELS)], inputs,
                                                                      T.Shuffle([weights], [c, c, c, c]))

        @T.macro
        def dot(col, w, acc, c0, p0, channels, g):
            for half in T.unroll(2):
                weights = T.meta_var(T.reinterpret("int32x4", w[T.Ramp(((c0 * count) + g * block + half * 4) * GROUP, 1,
                                                                        16)]))
                for c in T.unroll(4):
                    if half * 4 + c < channels:
                        lane = T.meta_var(T.reinterpret("int8x16", T.Shuffle([weights], [c, c, c, c])))
                        for quad in T.unroll(2):
                            acc[T.Ramp((half * 4 + c) * PIXELS + quad * 4, 1, 4)] = T.call_llvm_pure_intrin(
                                "int32x4", "llvm.aarch64.neon.sdot.v4i32.v16i8",
                                acc[T.Ramp((half * 4 + c) * PIXELS + quad * 4, 1, 4)],
                                col[T.Ramp(((g * columns) + p0 + quad * 4) * GROUP, 1, 16)], lane)

        step = {"dotprod": dot, "armv7": multiply_add_by_scalar}.get(isa, multiply_add)

        @T.macro
        def tile(col, w, bias, multiplier, shift, y, acc, tail, c0, p0, channels, pixels):
            for c in T.unroll(channels):
                acc[T.Ramp(c * PIXELS, 1, PIXELS)] = T.Broadcast(bias[c0 + c], PIXELS)
            for k0 in range(count // unroll):
                for u in T.unroll(unroll):
                    step(col, w, acc, c0, p0, channels, k0 * unroll + u)
            for u in T.unroll(count % unroll):
                step(col, w, acc, c0, p0, channels, count // unroll * unroll + u)
            for c in T.unroll(channels):
                out = T.meta_var(requantize(acc[T.Ramp(c * PIXELS, 1, PIXELS)], multiplier[c0 + c], shift[c0 + c]))
                if pixels == PIXELS:
                    y[T.Ramp((c0 + c) * cs + p0, 1, PIXELS)] = out
                else:
                    tail[T.Ramp(0, 1, PIXELS)] = out
                    for i in T.unroll(pixels):
                        y[(c0 + c) * cs + p0 + i] = tail[i]

        return tile
