"""int8 convolution (groups of 1, NCHW) as a GEMM: per pair of output pixels, an int16 column of
each pixel's receptive field (im2col, padded with the input's zero point), then the shared
micro-kernel (`gemm.py`) over the output channels, two at a time.

The column is built once per pixel and read by every output channel; its cost (a load and a
store per element) is spread over the channels. Pixels whose receptive field lies inside the
input (all of them without padding) take a path with no bounds tests.

Short reductions (up to STATIONARY elements, padded: VWW's 8 -> 16 pointwise layer) take the
weights-stationary GEMM (`gemm.Gemm.stationary`) instead: per block of BLOCK pixels along an
output row (a 1x1 stride-1 convolution without padding is one long row), the block's columns,
then per output channel its weights loaded once for the whole block. A 2 x 2 tile of so short a
reduction spends more on loading its column and weight words and the channels' constants than on
its 16 SMLAD (VWW 8->16: 2.35 instructions per MAC; 1.80 stationary). Not with `size` (its
unrolled block is more code) nor for in-place kernels with a ring of rows.

In place (the output overwrites the input, `ring_rows`): with stride 1 and the output as large as
the input, output (c, p) lands on input pixel p of channel c; the kernel writes a pixel pair's
outputs, all channels, after building both columns, so once pair p is done, input pixels below p
are gone. Pixels of rows above a pixel's own, and of its own row left of it, are then read from
a ring of the last input rows (all channels) in the workspace: each row is copied into it before
the pair that holds its first pixel. Rows below a pixel's own are still intact in the input.

On the M55 (layout packing.MVE) the columns are int8 and the micro-kernel is Helium's (mve/gemm.py)."""
from __future__ import annotations

import dataclasses
import functools
import json

import numpy as np
from tvm import tirx
from tvm.script import tirx as T

from edgeprune.compile.conv_shape import ConvShape
from edgeprune.compile.dsp.gemm import Gemm, loop_count
from edgeprune.compile.dsp.intrinsics import sxtb16, sxtb16_odd
from edgeprune.compile.dsp.packing import MVE, column_slot, interleave_pairs, pack_rows, padded_length, paired_slot
from edgeprune.compile.int8_kernels import Requantize
from edgeprune.compile.mve import gemm as mve_gemm

CHANNELS = 2  # output channels per GEMM tile (a one-channel tail for odd counts)
STATIONARY = 8  # reductions of up to this many elements (padded) take the weights-stationary GEMM
BLOCK = 16  # pixels per block there (VWW 8->16, instructions per MAC: 1.92 with 8, 1.85 with 12, 1.80 with 16, 2.02 with 24)
IN_PLACE = "edgeprune.in_place"  # kernel attribute: y may be x (the plan may alias them)
TWIN = "edgeprune.in_place_twin"  # kernel attribute: how to build the kernel's in-place twin (JSON)


def interleaved(layout: str, padded: int, pairs: bool) -> bool:
    """Whether the GEMM tiles read their weights and columns by pairs (`packing.interleave_pairs`):
    on cores that take them (`pairs`, int8.pairs_pay), int16 weights, except for reductions short
    enough for the weights-stationary GEMM."""
    return pairs and layout == "int16" and padded > STATIONARY


def pack_weights(weight: np.ndarray, layout: str, fast: bool, pairs: bool = False) -> np.ndarray:
    """OIHW int8 weights as the kernel reads them (`packing.pack_rows`, by pairs of output channels
    where `interleaved`); with the fast requantize (which takes twice the sum) int16 weights doubled
    (int8 ones keep their byte: the column is doubled instead, or on MVE the sum itself)."""
    rows = weight.reshape(weight.shape[0], -1).astype(np.int16)
    packed = pack_rows(rows * 2 if fast and layout == "int16" else rows, layout)
    padded = padded_length(rows.shape[1], layout)
    return interleave_pairs(packed.reshape(len(rows), padded)) if interleaved(layout, padded, pairs) else packed


def ring_rows(shape: ConvShape) -> int | None:
    """Input rows the kernel keeps to run in place: None if it cannot (stride > 1, or an output
    pixel that is not on its input pixel), 0 if it needs none (no window reaches above or left of
    its pixel: 1x1 kernels). A pair of pixels straddling two rows (odd width) needs one row more."""
    same_size = (shape.out_height, shape.out_width) == (shape.height, shape.width)
    if shape.strides != (1, 1) or not same_size:
        return None
    top, left = shape.padding[:2]
    return 0 if top == 0 and left == 0 else top + 1 + shape.width % 2


@functools.cache  # parsing the TVMScript takes about half a second; a search compiles the same layers again
def conv2d(shape: ConvShape, requantize: Requantize, zero_point: int, layout: str, fast: bool = False,
           in_place: bool = False, size: bool = False, pairs: bool = False) -> tirx.PrimFunc:
    """The PrimFunc (x, packed weights, table, groups, y) of one convolution; `table` and `fast`
    as `dense.constants` gave them for tiles of all output channels (fast: weights doubled by
    `pack_weights`, or the column for int8 weights; on MVE the GEMM doubles the sum); `groups`
    holds the GEMM's `loop_count(padded_length(depth, layout))` (gemm.py, mve/gemm.py for layout
    packing.MVE). `in_place`: the kernel that keeps a ring of `ring_rows(shape)` input rows, so
    that y may be x. `size` (--optimize size): smaller
    code, same integers: the GEMM's short loop bodies (Gemm.size), one column builder with
    bounds tests for every pixel instead of a second one without them for the interior, and no
    one-pixel tiles where the pair ending with the odd one can be computed again (an odd last
    channel keeps its one-channel tile: since short reductions run unrolled, a second two-channel
    tile took more code, 12,850 B against 13,472 B on test_int8_kernels' regular case), and no
    weights-stationary GEMM. `pairs`: weights packed by `pack_weights` with the same `pairs`."""
    cin, height, width, cout = shape.channels_in, shape.height, shape.width, shape.channels_out
    (kh, kw), (sh, sw), (dh, dw) = shape.kernel, shape.strides, shape.dilation
    top, left = shape.padding[:2]
    oh, ow = shape.out_height, shape.out_width
    pixels, depth, padded = oh * ow, shape.depth, padded_length(shape.depth, layout)
    (y_first, y_last), (x_first, x_last) = shape.interior(0), shape.interior(1)
    always_inside = y_first <= 0 and x_first <= 0 and y_last >= oh - 1 and x_last >= ow - 1
    if layout == MVE:
        tile, row = mve_gemm.Gemm(padded, cout, pixels, 1, requantize, fast).tile(), None
    else:
        gemm = Gemm(padded, layout, cout, pixels, 1, requantize, fast, size, interleaved(layout, padded, pairs))
        tile, row = gemm.tile(), gemm.stationary()
    weight_dtype = "int16" if layout == "int16" else "int8"
    column_dtype = "int8" if layout == MVE else "int16"
    # the GEMM's views of the weights and of the columns: (dtype, elements per item)
    w_view = {"int16": ("int64", 4), "int8": ("int32", 4), MVE: ("int8", 1)}[layout]
    col_view = ("int8", 1) if layout == MVE else ("int64", 4)
    pad = T.int8(zero_point)
    scale = 2 if fast and layout == "int8" else 1  # the fast requantize's doubled sum, from the column
    rows = ring_rows(shape) if in_place else 0
    stationary = layout != MVE and padded <= STATIONARY and not rows and not size
    by_pairs = interleaved(layout, padded, pairs)
    # a 1x1 stride 1 convolution without padding reads pixel p of every channel plane: one long row
    flat = (kh, kw, sh, sw) == (1, 1, 1, 1) and not any(shape.padding)
    row_count, row_length = (1, pixels) if flat else (oh, ow)
    rows_needed = ring_rows(shape)
    aliased = in_place or rows_needed == 0  # y may be x
    # --optimize size, odd pixel count, y never x: the last pixel in a pair with the one before (stored again)
    shared_tail = size and pixels % 2 == 1 and pixels > 1 and not aliased
    if rows is None:
        raise ValueError(f"a {kh}x{kw} stride {sh}x{sw} convolution from {height}x{width} to {oh}x{ow} "
                         "cannot run in place: only stride 1 with the output as large as the input")
    ring_bytes = max(rows * cin * width, 4)
    columns = BLOCK if stationary else 2
    split = min(kh, top // dh + 1) if rows else 0  # window rows up to the pixel's own: from the ring
    # two neighbours' windows share input elements (stride 1 along the row, kernel wider than 1)
    overlapping = not size and kw > 1 and sw == 1 and dw == 1
    words = width % 4 == 0  # rows copied a word at a time (offsets of whole rows stay 4-aligned)

    def slot(pixel, k):
        """Where reduction element k of the column buffer's pixel `pixel` goes (both ints or TIR indices)."""
        if by_pairs:
            return pixel // 2 * 2 * padded + paired_slot(pixel % 2, k)
        return pixel * padded + column_slot(k, layout)

    def entry(value):
        """An int8 input element as a column entry (int16, int8 on MVE; doubled for the fast requantize)."""
        return T.Cast(column_dtype, value) * T.Cast(column_dtype, scale)

    def element(x, ring, ci, iy, ix, from_ring: bool):
        """Input element (ci, iy, ix), from the ring (in place: a row up to the pixel's own) or the input."""
        if from_ring:
            return ring[((iy % rows) * cin + ci) * width + ix]
        return x[ci * height * width + iy * width + ix]

    @T.macro
    def keep_row(x, ring, pixel):
        """In place: the input row starting at `pixel` into the ring, before the pair holding it writes."""
        if rows > 0:
            if pixel % width == 0:
                if words:
                    x32 = T.decl_buffer((cin * height * width // 4,), "int32", data=x.data)
                    ring32 = T.decl_buffer((ring_bytes // 4,), "int32", data=ring.data)
                    for ci, i in T.grid(cin, width // 4):
                        ring32[((pixel // width % rows) * cin + ci) * (width // 4) + i] = x32[
                            ci * (height * width // 4) + pixel // 4 + i]
                else:
                    for ci, ix in T.grid(cin, width):
                        ring[((pixel // width % rows) * cin + ci) * width + ix] = x[ci * height * width + pixel + ix]

    @T.macro
    def window_rows(x, ring, col, base, oy, ox, first, count, from_ring, checked, span):
        """The column entries of window rows first .. first + count - 1 of the `span` pixels from
        (oy, ox) along the row (the column buffer's pixels base, base + 1, ...); bounds tests if
        `checked`."""
        for ci, k in T.grid(cin, count):
            for kx in T.unroll(kw):
                for i in T.unroll(span):
                    iy = T.meta_var(oy * sh + (first + k) * dh - top)
                    ix = T.meta_var((ox + i) * sw + kx * dw - left)
                    at = T.meta_var(slot(base + i, (ci * kh + first + k) * kw + kx))
                    if checked:
                        inside = T.meta_var(0 <= iy and iy < height and 0 <= ix and ix < width)
                        col[at] = entry(T.if_then_else(inside, element(x, ring, ci, iy, ix, from_ring), pad))
                    else:
                        col[at] = entry(element(x, ring, ci, iy, ix, from_ring))

    @T.macro
    def window(x, ring, col, base, oy, ox, checked, span):
        if split > 0:
            window_rows(x, ring, col, base, oy, ox, 0, split, True, checked, span)
        if kh > split:
            window_rows(x, ring, col, base, oy, ox, split, kh - split, False, checked, span)

    @T.macro
    def row_columns(x, ring, col, base, oy, ox, span):
        """The columns of the `span` pixels along row oy from ox (the column buffer's from `base`);
        bounds tests unless all their windows lie inside the input."""
        if always_inside:
            window(x, ring, col, base, oy, ox, False, span)
        elif size:
            window(x, ring, col, base, oy, ox, True, span)
        elif y_first <= oy and oy <= y_last and x_first <= ox and ox + (span - 1) <= x_last:
            window(x, ring, col, base, oy, ox, False, span)
        else:
            window(x, ring, col, base, oy, ox, True, span)

    @T.macro
    def column(x, ring, col, base, pixel):
        row_columns(x, ring, col, base, pixel // ow, pixel % ow, 1)

    def plane_pair_word(x, x16, j, first):
        """Pixels first and first + 1 of planes 2j and 2j + 1 as the bytes of one word (plane 2j's
        two first): a halfword load per plane where a plane's pixel count is even (`x16`, the
        input's int16 view), byte loads otherwise."""
        if pixels % 2 == 0:
            return (T.Cast("int32", T.Cast("uint16", x16[j * pixels + first // 2]))
                    | (T.Cast("int32", x16[j * pixels + pixels // 2 + first // 2]) << 16))
        return (_byte(x[2 * j * pixels + first]) | (_byte(x[2 * j * pixels + first + 1]) << 8)
                | (_byte(x[(2 * j + 1) * pixels + first]) << 16) | (_byte(x[(2 * j + 1) * pixels + first + 1]) << 24))

    @T.macro
    def flat_columns(x, col, p0, count):
        """The columns of the `count` pixels from p0 (the column buffer's first) of a 1x1 stride-1
        convolution without padding, whose elements lie side by side in each channel plane, two
        pixels at a time: per two planes, a word of the pair's two bytes in each, widened by
        SXTB16 and SXTB16 ROR #8 into the pixels' column words. With even planes each plane's two
        bytes are one LDRH: 7 instructions per 4 elements against 8 and the planes' offsets
        (VWW 9,583,560 -> 9,556,200 instructions); with odd ones (unaligned) four byte loads
        (KWS 3,227,360 -> 3,216,960). An odd last pixel takes an element at a time. int16 weights
        only (their columns hold the elements in order, as they are)."""
        col32 = T.decl_buffer((columns * padded // 2,), "int32", data=col.data)
        x16 = T.decl_buffer((cin * pixels // 2,), "int16", data=x.data)  # read only when a plane's pixel count is even
        for q in T.unroll(count // 2):
            first = T.meta_var(p0 + 2 * q)
            for j in range(depth // 2):
                word = T.meta_var(plane_pair_word(x, x16, j, first))
                col32[slot(2 * q, 2 * j) // 2] = sxtb16(word)
                col32[slot(2 * q + 1, 2 * j) // 2] = sxtb16_odd(word)
            if depth % 2 == 1:
                for i in T.unroll(2):
                    col[slot(2 * q + i, depth - 1)] = entry(x[(depth - 1) * pixels + first + i])
        if count % 2 == 1:
            for k in range(depth):
                col[slot(count - 1, k)] = entry(x[k * pixels + p0 + count - 1])

    @T.macro
    def pair_columns(x, ring, col, p0):
        """The columns of pixels p0 and p0 + 1; where the two windows overlap along a row
        (`overlapping`), both pixels in the interior are built together, each input element loaded
        once; interleaved 1x1 ones by `flat_columns`."""
        oy = T.meta_var(p0 // ow)
        ox = T.meta_var(p0 % ow)
        if flat and by_pairs:
            flat_columns(x, col, p0, 2)
        elif overlapping and y_first <= oy and oy <= y_last and x_first <= ox and ox + 1 <= x_last:  # x_last < ow
            window(x, ring, col, 0, oy, ox, False, 2)
        else:
            column(x, ring, col, 0, p0)
            column(x, ring, col, 1, p0 + 1)

    @T.macro
    def block(x, ring, col16, col, w, table, y, acc, groups, oy, ox, span):
        """The stationary GEMM: the columns of `span` pixels along row oy from ox, then every output channel's."""
        if flat and layout == "int16":  # int8 weights: columns in SXTB16's lane order, maybe doubled
            flat_columns(x, col16, ox, span)
        else:
            row_columns(x, ring, col16, 0, oy, ox, span)
        for c in range(cout):
            row(col, w, table, y, acc, c, oy * row_length + ox, span, (groups[0] - loop_count(padded)) * c)

    @T.macro
    def outputs(col, w, table, y, acc, groups, p0, count):
        """Every output channel of the `count` pixels from p0, their columns built."""
        for c in range(cout // CHANNELS):
            tile(col, w, table, y, acc, groups, c * CHANNELS, p0, CHANNELS, count)
        if cout % CHANNELS == 1:
            tile(col, w, table, y, acc, groups, cout - 1, p0, 1, count)

    @T.macro
    def pair_outputs(x, ring, col16, col, w, table, y, acc, groups, p0):
        keep_row(x, ring, p0)
        keep_row(x, ring, p0 + 1)
        pair_columns(x, ring, col16, p0)
        outputs(col, w, table, y, acc, groups, p0, 2)

    @T.prim_func
    def kernel(x_in: T.Buffer((1, cin, height, width), "int8"), w_in: T.Buffer((cout * padded,), weight_dtype),
               table: T.Buffer((4 * cout,), "int32"), groups: T.Buffer((1,), "int32"),
               y_out: T.Buffer((1, cout, oh, ow), "int8")):
        x = T.decl_buffer((cin * height * width,), "int8", data=x_in.data)
        y = T.decl_buffer((cout * pixels,), "int8", data=y_out.data)
        w = T.decl_buffer((cout * padded // w_view[1],), w_view[0], data=w_in.data)
        acc = T.decl_buffer((4,), "int32")
        # 8-byte alignment is all LDRD needs; TVM's default (16) makes LLVM realign the stack, which costs
        # the frame pointer's register (r7) inside the GEMM loop (KWS pointwise 1.084 -> 1.076 instructions per MAC)
        col16 = T.decl_buffer((columns * padded,), column_dtype, align=16 if layout == MVE else 8)
        col = T.decl_buffer((columns * padded // col_view[1],), col_view[0], data=col16.data)
        ring = T.decl_buffer((ring_bytes,), "int8", align=4)  # copied by words (keep_row); no realignment either
        for i in T.unroll(columns):
            for k in T.unroll(padded - depth):
                col16[slot(i, depth + k)] = T.Cast(column_dtype, 0)
        if stationary:
            for oy in range(row_count):
                for b in range(row_length // BLOCK):
                    block(x, ring, col16, col, w, table, y, acc, groups, oy, b * BLOCK, BLOCK)
                if row_length % BLOCK > 0:
                    block(x, ring, col16, col, w, table, y, acc, groups, oy, row_length - row_length % BLOCK,
                          row_length % BLOCK)
        elif shared_tail:
            for pair in range((pixels + 1) // 2):
                pair_outputs(x, ring, col16, col, w, table, y, acc, groups, T.min(pair * 2, pixels - 2))
        else:
            for pair in range(pixels // 2):
                pair_outputs(x, ring, col16, col, w, table, y, acc, groups, pair * 2)
        if pixels % 2 == 1 and not shared_tail and not stationary:
            keep_row(x, ring, pixels - 1)
            column(x, ring, col16, 0, pixels - 1)
            outputs(col, w, table, y, acc, groups, pixels - 1, 1)

    attrs = {IN_PLACE: aliased}
    if rows_needed and not in_place:
        attrs[TWIN] = json.dumps({"shape": dataclasses.asdict(shape), "requantize": dataclasses.asdict(requantize),
                                  "zero_point": zero_point, "layout": layout, "fast": fast, "size": size,
                                  "pairs": pairs})
    return kernel.with_attrs(attrs)


def in_place_twin(func: tirx.PrimFunc) -> tirx.PrimFunc | None:
    """The in-place kernel (with its ring of rows) of a convolution kernel that can run in place
    only with one, carrying the same attributes; None for other kernels."""
    if func.attrs is None or TWIN not in func.attrs:
        return None
    args = json.loads(str(func.attrs[TWIN]))
    shape = ConvShape(**{k: tuple(v) if isinstance(v, list) else v for k, v in args["shape"].items()})
    twin = conv2d(shape, Requantize(**args["requantize"]), args["zero_point"], args["layout"], args["fast"],
                  in_place=True, size=args["size"], pairs=args["pairs"])
    kept = {k: v for k, v in func.attrs.items() if k not in (IN_PLACE, TWIN, "global_symbol")}
    return twin.with_attrs(kept)


def _byte(value):
    """An int8 as the int32 of its byte (zero-extended)."""
    return T.Cast("int32", T.Cast("uint8", value))
