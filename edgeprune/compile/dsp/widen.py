"""Each row of a dense layer's int8 input widened into an int16 column in the weights' lane order
(`packing.column_slot`), for the kernels that read a column once per output (`dense.py`, a chunk
at a time; `sparse_dense.py`, a whole row)."""
from __future__ import annotations

from tvm.script import tirx as T

from edgeprune.compile.dsp.intrinsics import sadd16, sxtb16, sxtb16_odd
from edgeprune.compile.dsp.packing import column_slot


def row_widener(depth: int, layout: str, doubled: bool = False):
    """A TIR macro widen(x, x32, col16, col32, r, first, count): the `count` groups of four from
    group `first` of row r of x (its int8 view `x`, int32 view `x32`) into `col16` (int16;
    `col32` its int32 view), lanes past the row's end zero, each value doubled if `doubled`. Where
    a row is whole words and the layout int8, a word widens into two column words with SXTB16 and
    SXTB16 ROR #8."""
    words = depth % 4 == 0 and layout == "int8"
    scale = 2 if doubled else 1

    @T.macro
    def widen(x, x32, col16, col32, r, first, count):
        if words:
            for g in range(count):
                even = T.meta_var(sxtb16(x32[r * depth // 4 + first + g]))
                odd = T.meta_var(sxtb16_odd(x32[r * depth // 4 + first + g]))
                col32[g * 2] = sadd16(even, even) if doubled else even
                col32[g * 2 + 1] = sadd16(odd, odd) if doubled else odd
        else:
            for k in range(count * 4):
                col16[column_slot(k, layout)] = T.Cast("int16", T.if_then_else(
                    first * 4 + k < depth, x[r * depth + first * 4 + k], T.int8(0))) * T.int16(scale)

    return widen
