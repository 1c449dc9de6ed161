"""Copying int8 inputs into the kernels' buffers (im2col rows, channel planes), as int16 (widened)
or int8: eight at a time where source and destination are contiguous, one at a time otherwise."""
from __future__ import annotations

from tvm.script import tirx as T

LANES = 8


def copier(src_stride: int, dst_stride: int = 1, dtype: str = "int16"):
    """A TIR macro copy(dst, dst_start, src, src_start, count): dst[dst_start + i * dst_stride] =
    dtype(src[src_start + i * src_stride]) for i < count (count a run-time value, except for a
    contiguous int8 copy: its vector loop is unrolled, as a plain copy loop would become a call of
    memcpy, LLVM's loop idiom)."""
    vector = src_stride == 1 and dst_stride == 1
    widens = dtype != "int8"

    @T.macro
    def copy(dst, dst_start, src, src_start, count):
        if vector:
            for v in T.serial(count // LANES) if widens else T.unroll(count // LANES):
                dst[T.Ramp(dst_start + v * LANES, 1, LANES)] = T.Cast(f"{dtype}x{LANES}",
                                                                      src[T.Ramp(src_start + v * LANES, 1, LANES)])
            for i in range(count % LANES):
                dst[dst_start + count // LANES * LANES + i] = T.Cast(dtype, src[src_start + count // LANES * LANES + i])
        else:
            for i in range(count):
                dst[dst_start + i * dst_stride] = T.Cast(dtype, src[src_start + i * src_stride])

    return copy


def interleave(group: int, rows: int, columns: int):
    """A TIR macro interleave(dst, src, count): the int8 matrix src [rows, count] (row-major) as
    dst [rows / group, columns, group], the SDOT kernels' input, eight columns at a time (`rows` a
    multiple of `group`; columns from count to `columns` are left alone)."""

    @T.macro
    def copy(dst, src, count):
        for g in range(rows // group):
            for v in range(count // LANES):
                dst[T.Ramp((g * columns + v * LANES) * group, 1, LANES * group)] = T.Shuffle(
                    [src[T.Ramp((g * group + r) * count + v * LANES, 1, LANES)] for r in range(group)],
                    [(i % group) * LANES + i // group for i in range(LANES * group)])
            for i, r in T.grid(count % LANES, group):
                dst[(g * columns + count // LANES * LANES + i) * group + r] = src[
                    (g * group + r) * count + count // LANES * LANES + i]

    return copy
