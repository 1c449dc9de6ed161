"""Each row of a dense layer's int8 input widened once into an int16 column in the weights' lane
order (`packing.column_slot`), for kernels that read a column once per output (`sparse_dense.py`;
`dense.py` does the same inline)."""
from __future__ import annotations

from tvm.script import tirx as T

from edgeprune.compile.dsp.intrinsics import sxtb16, sxtb16_odd
from edgeprune.compile.dsp.packing import column_slot


def row_widener(depth: int, layout: str):
    """A TIR macro widen(x, x32, col16, col32, r): row r of x (its int8 view `x`, int32 view `x32`)
    into `col16` (int16; `col32` its int32 view). Where a row is whole words and the layout int8,
    a word widens into two column words with SXTB16 and SXTB16 ROR #8."""
    words = depth % 4 == 0 and layout == "int8"

    @T.macro
    def widen(x, x32, col16, col32, r):
        if words:
            for g in range(depth // 4):
                col32[g * 2] = sxtb16(x32[r * depth // 4 + g])
                col32[g * 2 + 1] = sxtb16_odd(x32[r * depth // 4 + g])
        else:
            for k in range(depth):
                col16[column_slot(k, layout)] = T.Cast("int16", x[r * depth + k])

    return widen
