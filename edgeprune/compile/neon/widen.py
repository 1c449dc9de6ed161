"""Copying int8 inputs into the kernels' int16 buffers (im2col rows, channel planes): eight at a
time where the source is contiguous, one at a time for the rest and for strided sources."""
from __future__ import annotations

from tvm.script import tirx as T

LANES = 8


def widen(stride: int):
    """A TIR macro widen(dst, dst_start, src, src_start, count): dst[dst_start + i] =
    int16(src[src_start + i * stride]) for i < count (count a run-time value)."""

    @T.macro
    def copy(dst, dst_start, src, src_start, count):
        if stride == 1:
            for v in range(count // LANES):
                dst[T.Ramp(dst_start + v * LANES, 1, LANES)] = T.Cast("int16x8", src[T.Ramp(src_start + v * LANES, 1, LANES)])
            for i in range(count % LANES):
                dst[dst_start + count // LANES * LANES + i] = T.Cast("int16", src[src_start + count // LANES * LANES + i])
        else:
            for i in range(count):
                dst[dst_start + i] = T.Cast("int16", src[src_start + i * stride])

    return copy
