"""The GEMM micro-kernel shared by convolution and dense layers: a tile of output channels x
pixels accumulated with SMLAD from packed weights (`packing.py`) and int16 input columns, then
requantized (TFLM's arithmetic, `dense.requantized`: the short form where `dense.constants` finds
it exact) and stored as int8.

Per group of four reduction elements, a channel's weights are two words (int16 layout: loaded
as they are; int8 layout: one word widened twice) and a pixel's column is two words; every
(channel, pixel) pair then takes two SMLAD. Interleaved (`interleaved`: int16 weights of a channel
pair and the columns of a pixel pair, two elements at a time, `packing.interleave_pairs`), one
LDRD reads a pair of elements of both channels and one of both pixels, for four SMLAD: the same
loads as side by side, but a tile of 2 channels x 2 pixels keeps its four accumulators with only
four words of weights and columns live instead of six, and LLVM then spills and splits fewer of
its loads (measured on the M4, instructions per MAC: KWS 64->64 1.030 -> 0.995, VWW 32->32
1.26 -> 1.21, 128->128 0.94 -> 0.92, IC 32->64 1.22 -> 1.17). Not on the Cortex-M7
(`int8.pairs_pay`), where LLVM's schedule then leaves most loads unpaired."""
from __future__ import annotations

from dataclasses import dataclass

from tvm.script import tirx as T

from edgeprune.compile.dsp.dense import requantized
from edgeprune.compile.dsp.intrinsics import smlad, store_in_order, sxtb16, sxtb16_odd
from edgeprune.compile.int8_kernels import Requantize


UNROLL = 4  # groups of four reduction elements per pass of the micro-kernel's loop
WIDE_UNROLL = 16  # the same for two-pixel tiles (a multiple of UNROLL): see Gemm.tile
LONG_UNROLL = 64  # the most groups per pass of long reductions (a multiple of WIDE_UNROLL): see body_groups
OPAQUE = 4  # unrolled runs of at least this many groups (a reduction, or a loop's rest) read the column at an opaque offset (Gemm.tile)
LDRD_REACH = 1020  # the largest immediate offset of Thumb-2's LDRD (Gemm.tile)
TAIL_START = {4: 2, 8: 1}  # interleaved tiles: the group an unrolled run of that many groups starts at (Gemm.tile)


def loop_count(padded: int) -> int:
    """The micro-kernel loop's trip count for a reduction of `padded` elements (see Gemm.tile)."""
    return padded // 4 // UNROLL


@dataclass(frozen=True)
class Gemm:
    """One layer's GEMM: `padded` reduction length (a multiple of 4), weight `layout` and where
    output (channel c, pixel p) goes: y[c * channel_stride + p * pixel_stride]. The constants
    are the table of `dense.constants` for tiles of all `channels` (field f of channel c at
    f * channels + c); `fast` as it found (then the weights are doubled). `size` (--optimize
    size): smaller code, the same integers (see `tile`). `interleaved`: int16 weights and columns
    by pairs (module docstring)."""

    padded: int
    layout: str
    channels: int
    channel_stride: int
    pixel_stride: int
    requantize: Requantize
    fast: bool
    size: bool = False
    interleaved: bool = False

    def tile(self):
        """A TIR macro: tile(col, w, table, y, acc, groups, c0, p0, channels, pixels)
        computes output channels c0.. (`channels` of them) for the pixels whose columns are
        col[0:padded], col[padded:2 * padded], ... (`pixels` of them) starting at pixel p0.
        `col` is the columns' int64 view (a group of four int16 per element, one LDRD); `w` the
        weights' int64 view (int16 layout) or int32 view (int8 layout: a group per word).
        `groups` holds `loop_count(padded)`, read from memory at run time: with a constant trip
        count LLVM unrolls the loop completely and then schedules one accumulator's chain after
        the other, spilling the shared column and weight words. The trip count is written as at
        least 1 (a loop is only emitted where it runs), so LLVM drops the zero-trip guard and its
        register copies. Each pass takes its first group last (the sums are the same integers):
        LLVM addresses the group at the loop's offset itself register + register, which no LDRD
        pairs; taken last it leaves the first groups paired (KWS 64->64: 59 LDRD and 16 single
        loads per pass against 54 and 22, 1.076 -> 1.05 instructions per MAC). The loop body is
        UNROLL groups (the rest follow it), so that LLVM does not unroll it further, with a
        remainder of its own.
        Two-pixel tiles (the convolutions' main tile) take WIDE_UNROLL groups per pass: inside a
        long body LLVM pairs every load into an LDRD (4 LDRD + 8 SMLAD per group), only the
        first and last groups pay for spills and unpaired loads (measured on the M4 with the
        short requantize: VWW 128->128 0.96 instructions per MAC against 1.05 with 8 groups, IC's
        3x3 convolutions 1.10 against 1.18, for 4 % more kernel code on IC). Reductions of up to
        WIDE_UNROLL groups run unrolled (`body_groups`); from OPAQUE groups on, they read the
        column at an offset of (groups[0] - loop_count) * c0, 0 at run time: since the column
        sits at fixed stack offsets, its loads are otherwise the same for every channel tile,
        and LLVM hoists them out of the channel loop and spills them (side by side: KWS 64->64
        1.13 unrolled without the offset, 1.05 in a loop of one pass, 1.03 unrolled with it; VWW
        32->32 1.34 -> 1.26). Shorter ones keep their column words in registers and stack slots.
        The offset pays from 4 groups on (interleaved: VWW 16->32 1.52 -> 1.47, IC 16->32 1.56 ->
        1.51; side by side, against from 8: on the M7 VWW 10,731,720 -> 10,609,840 and IC
        16,542,440 -> 16,434,920 instructions, with int8 weights on the M4 VWW 11,752,440 ->
        11,523,920 and IC 19,954,720 -> 19,872,400). So does the unrolled rest of a long
        reduction after its loop, from OPAQUE groups on: IC's 3x3 convolutions (36 groups: a
        pass of 32 and a rest of 4; 72: 64 and 8; 144: two of 64 and 16) spilled and reloaded
        that rest's hoisted column words and its weights, about 100 instructions after the loop
        per tile of 2 x 2 (16->16 1.067 -> 0.999 per MAC, 64->64 0.920 -> 0.873; IC 14,382,200
        -> 13,727,360 instructions on the M4, 944 B less kernel code). Where a tile's reduction
        reaches past LDRD's immediate offsets (per_column * 16 B > LDRD_REACH), that rest starts
        at a group LLVM cannot see either (per_column - tail shifted left by groups[0] -
        loop_count, 0): with the constant start folded into every load's offset, beyond LDRD's
        reach, LLVM loaded each of the rest's words alone (IC 32->32 0.934 -> 0.917 per MAC,
        64->64 0.873 -> 0.852; 13,727,360 -> 13,612,640 instructions; on the M7 16,434,920 ->
        16,271,480). Within reach the hidden start costs (16->16 0.999 -> 1.015).
        Interleaved, an unrolled run of 4 groups starts at its third, one of 8 at its second
        (TAIL_START; the sums are the same integers): LLVM then leaves fewer of the run's loads
        unpaired (M4, instructions per MAC: VWW 16->32 1.483 -> 1.436, 32->32 1.199 -> 1.144,
        32->64 1.212 -> 1.165, IC 16->32 1.51 -> 1.46). Runs of 16 do best from their first
        (KWS 64->64 0.990, 1.002 from the second), and side by side (the M7) from the first too.
        With `size`, two-pixel tiles take UNROLL groups too (measured on KWS: 2 groups per pass,
        or a loop over the requantize, make the code larger). No loop is emitted that would never
        run."""
        per_column = self.padded // 4
        wide = self.layout == "int16"
        cs, ps, requantize, size = self.channel_stride, self.pixel_stride, self.requantize, self.size
        n, fast = self.channels, self.fast

        interleaved = self.interleaved

        @T.macro
        def step(col, w, acc, g, c0, channels, pixels, at):
            if interleaved:  # word h of a pair's item 2g + h: element pair 2h of channel c0 (low) and c0 + 1
                for h in T.unroll(2):
                    for c in T.unroll(channels):
                        for p in T.unroll(pixels):
                            if channels == 2:
                                weights = T.meta_var(_word(w[c0 * per_column + 2 * g + h], c))
                            else:  # a last odd channel: its own row, as side by side
                                weights = T.meta_var(_word(w[c0 * per_column + g], h))
                            acc[c * pixels + p] = smlad(_word(col[at + 2 * g + h], p), weights, acc[c * pixels + p])
            else:
                for c in T.unroll(channels):
                    if wide:
                        even = T.meta_var(_low(w[(c0 + c) * per_column + g]))
                        odd = T.meta_var(_high(w[(c0 + c) * per_column + g]))
                    else:
                        even = T.meta_var(sxtb16(w[(c0 + c) * per_column + g]))
                        odd = T.meta_var(sxtb16_odd(w[(c0 + c) * per_column + g]))
                    for p in T.unroll(pixels):
                        acc[c * pixels + p] = smlad(_low(col[at + p * per_column + g]), even, acc[c * pixels + p])
                        acc[c * pixels + p] = smlad(_high(col[at + p * per_column + g]), odd, acc[c * pixels + p])

        @T.macro
        def tile(col, w, table, y, acc, groups, c0, p0, channels, pixels):
            for i in T.unroll(channels * pixels):
                acc[i] = table[c0 + i // pixels]
            unroll = T.meta_var(body_groups(per_column, pixels, size))
            if unroll > 0:
                for block in range(T.max(groups[0] // (unroll // UNROLL), 1)):
                    for u in T.unroll(unroll):
                        step(col, w, acc, block * unroll + (u + 1) % unroll, c0, channels, pixels, 0)
            tail = T.meta_var(per_column % unroll if unroll > 0 else per_column)
            start = T.meta_var(TAIL_START.get(tail, 0) if interleaved else 0)
            # 0 at run time (groups holds loop_count), but LLVM cannot know it, nor that it is the same for every tile
            at = T.meta_var((groups[0] - loop_count(self.padded)) * c0 if tail >= OPAQUE else 0)
            first = T.meta_var(T.shift_left(per_column - tail, groups[0] - loop_count(self.padded))
                               if unroll > 0 and per_column * 16 > LDRD_REACH else per_column - tail)
            for u in T.unroll(tail):
                step(col, w, acc, first + _rotated(u, tail, start), c0, channels, pixels, at)
            for i in T.unroll(channels * pixels):
                c = T.meta_var(c0 + i // pixels)
                y[c * cs + (p0 + i % pixels) * ps] = requantized(
                    acc[i], table[n + c], table[2 * n + c], table[3 * n + c], requantize, fast)

        return tile

    def stationary(self):
        """A TIR macro: row(col, w, table, y, acc, c, p0, pixels, at) computes output channel c
        of the `pixels` pixels from p0 whose columns are col[at:at + padded // 4],
        col[at + padded // 4:...], ... one pixel after the other, unrolled: the channel's
        weights are loaded once for all of them, so each output takes only its column's LDRDs, its
        SMLADs and its requantize. `at` is 0 at run time but opaque to LLVM (conv.py passes
        (groups[0] - loop_count) * c): with constant offsets LLVM keeps the columns as values,
        spilled to stack slots and reloaded a word at a time (VWW 8->16: 2.14 instructions per
        MAC against 2.00). Each output is stored in order (`store_in_order`): with plain stores
        LLVM loads every column and computes all the sums before it requantizes any, and spills
        them (VWW 8->16 with blocks of 8 pixels: 2.00 -> 1.92). For short reductions
        (conv.STATIONARY)."""
        per_column = self.padded // 4
        wide = self.layout == "int16"
        cs, ps, requantize, n, fast = self.channel_stride, self.pixel_stride, self.requantize, self.channels, self.fast

        @T.macro
        def row(col, w, table, y, acc, c, p0, pixels, at):
            for p in T.unroll(pixels):
                acc[0] = table[c]
                for g in T.unroll(per_column):
                    if wide:
                        even = T.meta_var(_low(w[c * per_column + g]))
                        odd = T.meta_var(_high(w[c * per_column + g]))
                    else:
                        even = T.meta_var(sxtb16(w[c * per_column + g]))
                        odd = T.meta_var(sxtb16_odd(w[c * per_column + g]))
                    acc[0] = smlad(_low(col[at + p * per_column + g]), even, acc[0])
                    acc[0] = smlad(_high(col[at + p * per_column + g]), odd, acc[0])
                T.evaluate(store_in_order(y, c * cs + (p0 + p) * ps, requantized(
                    acc[0], table[n + c], table[2 * n + c], table[3 * n + c], requantize, fast)))

        return row


def body_groups(per_column: int, pixels: int, size: bool) -> int:
    """Groups of four in the loop body of a tile of `pixels` pixels over a reduction of
    `per_column` groups (0: no loop, all of them unrolled); see Gemm.tile. Measured on the M4
    with the short requantize: two-pixel tiles run up to WIDE_UNROLL groups unrolled (KWS 64->64
    1.03 instructions per MAC against 1.05 in a loop of one pass; with the column offset of
    Gemm.tile, VWW 32->32 1.26 against 1.34, the KWS 10x4 convolution 1.15 against 1.21); longer
    reductions loop over as many whole WIDE_UNROLL groups as they hold, up to LONG_UNROLL, the
    rest unrolled after the loop: fewer passes, less of their loop and of their unpaired first
    loads (with interleaved pairs: VWW 128->128 0.918 -> 0.881 in one pass of 32 groups against
    two of 16, 1.11 unrolled; 256->256 0.902 -> 0.853 in one pass of 64; IC 14,551,240 ->
    14,398,120 instructions, 14,657,040 with passes of up to 128 groups), and so do one-pixel
    tiles (the odd last pixel) (VWW 256->256 at 3x3 pixels 0.90 against 0.94 with UNROLL groups).
    Other tiles loop over UNROLL groups where the loop runs at least twice."""
    if not size and per_column > WIDE_UNROLL:
        return min(LONG_UNROLL, per_column // WIDE_UNROLL * WIDE_UNROLL)
    if pixels == 2 and not size:
        return 0
    return UNROLL if per_column >= 2 * UNROLL else 0  # a loop run once only adds code


def _rotated(u, count: int, start: int):
    """The u-th group of a run of `count` taken from its group `start` on, wrapping around."""
    return (u + start) % count if start else u


def _low(pair):
    """The first int32 word of an int64 (little endian): lanes 0 and 1 of a group."""
    return T.Cast("int32", pair)


def _high(pair):
    """The second int32 word of an int64: lanes 2 and 3 of a group."""
    return T.Cast("int32", pair >> T.int64(32))


def _word(pair, i):
    """Word i of an int64 (0 the first, 1 the second; an int or a TIR index)."""
    return T.Cast("int32", pair >> T.Cast("int64", 32 * i))
