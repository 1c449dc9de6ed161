"""The M55's convolution GEMM micro-kernel on MVE, in place of the DSP one (dsp/gemm.py) inside the
DSP convolution kernel (dsp/conv.py, layout packing.MVE): a tile of output channels x pixels whose
int8 weight rows and int8 input columns are read 16 reduction elements at a time (one VLDRB.8
each) and multiplied with VMLADAVA.S8, one instruction per (channel, pixel) pair and 16 MACs.
A tile of 2 channels x 2 pixels loads four vectors for four VMLADAVA; its four sums stay in
general registers."""
from __future__ import annotations

from dataclasses import dataclass

from tvm.script import tirx as T

from edgeprune.compile.dsp.dense import requantized
from edgeprune.compile.dsp.intrinsics import qadd
from edgeprune.compile.int8_kernels import Requantize
from edgeprune.compile.mve.intrinsics import vmladava

CHUNK = 16  # reduction elements per VMLADAVA.S8


def loop_count(padded: int) -> int:
    """The micro-kernel loop's trip count for a reduction of `padded` elements (see Gemm.tile)."""
    return padded // CHUNK


@dataclass(frozen=True)
class Gemm:
    """One layer's GEMM on MVE: `padded` reduction length (a multiple of CHUNK) and where output
    (channel c, pixel p) goes: y[c * channel_stride + p * pixel_stride]. The constants are the
    table of dsp.dense.constants for tiles of all `channels`, as in dsp.gemm.Gemm; `fast` as it
    found (then the kernel doubles the sum itself: int8 weights and columns cannot be doubled)."""

    padded: int
    channels: int
    channel_stride: int
    pixel_stride: int
    requantize: Requantize
    fast: bool

    def tile(self):
        """A TIR macro with dsp.gemm.Gemm.tile's arguments: `col` the int8 columns (pixel p's at
        p * padded), `w` the int8 weight rows, `groups` holds `loop_count(padded)`, read at run
        time so that LLVM keeps the loop (as in the DSP GEMM)."""
        padded, cs, ps, requantize = self.padded, self.channel_stride, self.pixel_stride, self.requantize
        n, fast = self.channels, self.fast

        @T.macro
        def tile(col, w, table, y, acc, groups, c0, p0, channels, pixels):
            for i in T.unroll(channels * pixels):  # the bias (doubled in the fast table: halved, exactly)
                acc[i] = table[c0 + i // pixels] >> 1 if fast else table[c0 + i // pixels]
            for j in range(groups[0]):
                for c in T.unroll(channels):
                    for p in T.unroll(pixels):
                        acc[c * pixels + p] = vmladava(acc[c * pixels + p],
                                                       w[T.Ramp((c0 + c) * padded + j * CHUNK, 1, CHUNK)],
                                                       col[T.Ramp(p * padded + j * CHUNK, 1, CHUNK)])
            for i in T.unroll(channels * pixels):  # twice the sum by QADD, as in mve/dense.py
                c = T.meta_var(c0 + i // pixels)
                y[c * cs + (p0 + i % pixels) * ps] = requantized(
                    qadd(acc[i], acc[i]) if fast else acc[i], table[n + c], table[2 * n + c], table[3 * n + c],
                    requantize, fast)

        return tile
