"""int8 dense layer (x [M, K] times weights [N, K]) on the DSP extension. A dense layer reads each
weight once per row of x, so its weights are int8 by default, widened in the loop with SXTB16 and
SXTB16 ROR #8 (int16 weights, twice the flash, save those). Each row of x is widened into an int16
column in the weights' lane order (`packing.column_slot`), then tiles of four outputs accumulate
with SMLAD.

- Weights are packed per tile (`pack_weights`): for each group of four reduction elements, the
  tile's four rows side by side, so the loop reads them with one pointer, two rows per LDRD.
- A long row is widened a chunk of CHUNK elements at a time, where that takes less RAM than the
  whole column: the tiles then keep their sums in an int32 buffer between chunks (4 bytes per
  output against 2 per widened input).
- Where the compiler can prove it exact (`constants`), the requantize takes five instructions per
  output: the column is widened doubled, so SMMLAR gives TFLM's rounding doubling high multiply
  plus a per-output constant (the rounding divide's half and the zero point, shifted), then one
  sign correction and one shift; the generic `Requantize` otherwise."""
from __future__ import annotations

import functools
import math

import numpy as np
from tvm import tirx
from tvm.script import tirx as T

from edgeprune.compile.dsp.intrinsics import smlad, sxtb16, sxtb16_odd
from edgeprune.compile.dsp.packing import padded_length
from edgeprune.compile.dsp.widen import row_widener
from edgeprune.compile.int8_kernels import Requantize

ROWS = 4  # outputs per tile (the rest one at a time)
CHUNK = 128  # reduction elements widened at a time (a multiple of 4 * UNROLL)
UNROLL = 4  # groups of four reduction elements per pass of the tile's loop


def chunk_groups(depth: int, outputs: int) -> int:
    """Groups of four reduction elements widened at a time: CHUNK / 4 where chunking saves RAM
    (the int32 sums of `outputs` cost less than the column's int16 beyond CHUNK), else all."""
    groups = padded_length(depth) // 4
    return CHUNK // 4 if 2 * padded_length(depth) > 2 * CHUNK + 4 * outputs else groups


def loop_count(depth: int, outputs: int) -> int:
    """The `groups` argument: the tile loop's trip count over a whole chunk (see `dense`)."""
    return chunk_groups(depth, outputs) // UNROLL


def constants(weight: np.ndarray, bias: np.ndarray, multiplier: np.ndarray, shift: np.ndarray,
              requantize: Requantize, tile: int = ROWS) -> tuple[bool, np.ndarray]:
    """(fast, the kernel's int32 constants): per output (bias, multiplier, 0, shift), or where the
    short requantize (`requantized`) equals TFLM's double rounding for every int8 input (fast),
    (bias doubled, multiplier, offset, right); laid out by tiles of `tile` outputs (`by_tile`). Fast needs every shift
    negative (right = -shift >= 1), every multiplier above 2**30 (so SMMLAR's high part is negative
    exactly when the sum is), twice the largest possible |sum| inside int32, and offset =
    2**(right - 1) + zero point * 2**right plus the high part inside int32."""
    right = -shift.astype(np.int64)
    offset = (np.int64(1) << np.maximum(right - 1, 0)) + (np.int64(requantize.zero_point) << np.maximum(right, 0))
    largest = np.abs(bias.astype(np.int64)) + 128 * np.abs(weight.astype(np.int64)).sum(axis=1)  # |sum| bound
    fast = bool(requantize.rounding == "double" and requantize.low is not None and np.all(right >= 1)
                and np.all(multiplier.astype(np.int64) > 1 << 30) and np.all(2 * largest < 1 << 31)
                and np.all(np.abs(offset) + largest + 2 < 1 << 31))
    if fast:
        fields = (2 * bias.astype(np.int64), multiplier, offset, right)
    else:
        fields = (bias, multiplier, np.zeros_like(bias), shift)
    return fast, by_tile(np.stack([np.asarray(f, np.int64) for f in fields], axis=1), tile).astype(np.int32)


def requantized(value, multiplier, offset, right, requantize: Requantize, fast: bool):
    """The int8 output of a sum `value` with its output's constants from the table of `constants`
    (`offset` unused unless fast). Fast: the sum is doubled (the column or the weights; QADD on MVE), so
    (SMMLAR(value, multiplier, offset) - (value < 0)) >> right, then the clamp."""
    if not fast:
        return requantize(value, multiplier, right)
    rounded = T.Cast("int32", (T.Cast("int64", value) * T.Cast("int64", multiplier)
                               + (T.Cast("int64", offset) << T.int64(32)) + T.int64(1 << 31)) >> T.int64(32))
    return T.Cast("int8", T.min(T.max((rounded - T.Cast("int32", value < 0)) >> right, requantize.low),
                                requantize.high))


def pack_weights(weight: np.ndarray, layout: str) -> np.ndarray:
    """Weights [N, K] as the kernel reads them: rows zero-padded to a multiple of 4, in groups of
    four elements laid out by tile (`by_tile`)."""
    count, depth = weight.shape
    padded = np.zeros((count, padded_length(depth)), np.int16 if layout == "int16" else np.int8)
    padded[:, :depth] = weight
    return by_tile(padded.reshape(count, -1, 4))


def by_tile(rows: np.ndarray, tile: int = ROWS) -> np.ndarray:
    """Per-output rows [N, F, ...] flattened as the kernel reads them: per tile of `tile` outputs
    (then each remaining output alone), field by field, the tile's outputs side by side."""
    whole = rows.shape[0] // tile * tile
    tiles = rows[:whole].reshape(-1, tile, *rows.shape[1:]).swapaxes(1, 2)
    return np.concatenate([tiles.reshape(-1), rows[whole:].reshape(-1)])


def storer(requantize: Requantize, fast: bool):
    """A TIR macro store(y, i, value, table, c0, size, c): y[i] = output c0 + c (of a tile of
    `size`) of the sum `value` (twice the sum if `fast`) with the table of `constants` (`fast` as
    it found), `requantized`."""

    @T.macro
    def store(y, i, value, table, c0, size, c):
        y[i] = requantized(value, table[c0 * 4 + size + c], table[c0 * 4 + 2 * size + c],
                           table[c0 * 4 + 3 * size + c], requantize, fast)

    return store


@functools.cache  # see conv.conv2d
def dense(x_shape: tuple[int, ...], outputs: int, requantize: Requantize, layout: str, fast: bool) -> tirx.PrimFunc:
    """The PrimFunc (x, packed weights, the table of `constants`, groups, y) of a dense layer
    on x of `x_shape` (..., K) with `outputs` outputs per row and weights in `layout`
    (packing.LAYOUTS, packed by `pack_weights`); `fast` as `constants` found. `groups` holds
    `loop_count`, read at run time: with a constant trip count LLVM unrolls the loop completely
    and spills the column and weight words."""
    depth = x_shape[-1]
    rows = math.prod(x_shape[:-1])
    padded = padded_length(depth)
    groups_per_row = padded // 4
    chunk = chunk_groups(depth, outputs)
    looped = -(-groups_per_row // chunk) - 1  # chunks before the last: they leave sums in `partial`
    last = groups_per_row - looped * chunk  # groups in the last chunk
    fewer = chunk // UNROLL - last // UNROLL  # passes the last chunk's loop runs fewer than `groups`
    chunked = looped > 0
    wide = layout == "int16"
    whole = outputs // ROWS * ROWS
    y_shape = (*x_shape[:-1], outputs)

    widen = row_widener(depth, layout, doubled=fast)  # the fast requantize takes twice the sum

    store = storer(requantize, fast)

    @T.macro
    def step(col, w, w32, acc, g, group, c0, tile):
        """Group g of the column (the row's group `group`) into the sums of outputs c0.. (`tile`)."""
        low = T.meta_var(T.Cast("int32", col[g]))
        high = T.meta_var(T.Cast("int32", col[g] >> T.int64(32)))
        base = T.meta_var(c0 * groups_per_row + group * tile)
        for c in T.unroll(tile):
            if wide:
                acc[c] = smlad(low, T.Cast("int32", w[base + c]), acc[c])
                acc[c] = smlad(high, T.Cast("int32", w[base + c] >> T.int64(32)), acc[c])
            elif tile == 1:
                acc[c] = smlad(low, sxtb16(w32[base + c]), acc[c])
                acc[c] = smlad(high, sxtb16_odd(w32[base + c]), acc[c])
            else:
                word = T.meta_var(T.Cast("int32", w[(base + c) // 2] >> T.int64(c % 2 * 32)))
                acc[c] = smlad(low, sxtb16(word), acc[c])
                acc[c] = smlad(high, sxtb16_odd(word), acc[c])

    @T.macro
    def tile(col, w, w32, acc, passes, first, count, c0, size):
        """Groups first.. (`count`) into the sums acc of outputs c0.. (`size`); `passes` is
        count // UNROLL, opaque to LLVM."""
        if count >= UNROLL:
            for p in range(passes):
                for u in T.unroll(UNROLL):
                    step(col, w, w32, acc, p * UNROLL + u, first + p * UNROLL + u, c0, size)
        for u in T.unroll(count % UNROLL):
            step(col, w, w32, acc, count // UNROLL * UNROLL + u, first + count // UNROLL * UNROLL + u, c0, size)

    @T.prim_func
    def kernel(x_in: T.Buffer(x_shape, "int8"), w_in: T.Buffer((outputs * padded,), layout),
               table: T.Buffer((outputs * 4,), "int32"), groups: T.Buffer((1,), "int32"),
               y_out: T.Buffer(y_shape, "int8")):
        x = T.decl_buffer((rows * depth,), "int8", data=x_in.data)
        x32 = T.decl_buffer((rows * depth // 4,), "int32", data=x_in.data)
        w = T.decl_buffer((outputs * padded // (4 if wide else 8),), "int64", data=w_in.data)
        w32 = T.decl_buffer((outputs * padded // 4,), "int32", data=w_in.data)
        y = T.decl_buffer((rows * outputs,), "int8", data=y_out.data)
        col16 = T.decl_buffer((chunk * 4,), "int16", align=8)
        col32 = T.decl_buffer((chunk * 2,), "int32", data=col16.data)
        col = T.decl_buffer((chunk,), "int64", data=col16.data)
        partial = T.decl_buffer((outputs if chunked else 1,), "int32", align=8)
        for r in range(rows):
            if chunked:
                for t in range(outputs // ROWS):
                    for c in T.unroll(ROWS):
                        partial[t * ROWS + c] = table[t * ROWS * 4 + c]
                for n in range(whole, outputs):
                    partial[n] = table[n * 4]
                for j in range(looped):
                    widen(x, x32, col16, col32, r, j * chunk, chunk)
                    for t in range(outputs // ROWS):
                        acc = T.decl_buffer((ROWS,), "int32", align=8)
                        for c in T.unroll(ROWS):
                            acc[c] = partial[t * ROWS + c]
                        tile(col, w, w32, acc, groups[0], j * chunk, chunk, t * ROWS, ROWS)
                        for c in T.unroll(ROWS):
                            partial[t * ROWS + c] = acc[c]
                    for n in range(whole, outputs):
                        one = T.decl_buffer((1,), "int32")
                        one[0] = partial[n]
                        tile(col, w, w32, one, groups[0], j * chunk, chunk, n, 1)
                        partial[n] = one[0]
            widen(x, x32, col16, col32, r, looped * chunk, last)
            for t in range(outputs // ROWS):
                acc = T.decl_buffer((ROWS,), "int32", align=8)
                for c in T.unroll(ROWS):
                    if chunked:
                        acc[c] = partial[t * ROWS + c]
                    else:
                        acc[c] = table[t * ROWS * 4 + c]
                tile(col, w, w32, acc, groups[0] - fewer, looped * chunk, last, t * ROWS, ROWS)
                for c in T.unroll(ROWS):
                    store(y, r * outputs + t * ROWS + c, acc[c], table, t * ROWS, ROWS, c)
            for n in range(whole, outputs):
                one = T.decl_buffer((1,), "int32")
                if chunked:
                    one[0] = partial[n]
                else:
                    one[0] = table[n * 4]
                tile(col, w, w32, one, groups[0] - fewer, looped * chunk, last, n, 1)
                store(y, r * outputs + n, one[0], table, n, 1, 0)

    return kernel
