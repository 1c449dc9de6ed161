"""int8 convolution (groups of 1, NCHW) on NEON as a GEMM: the input becomes a matrix of the
reduction by the pixels (im2col padded with the input's zero point; int16, or int8 in groups of
four for SDOT; a 1x1 stride-1 convolution without padding only copies its input), then the tiles
of `gemm.py` run over pixels x output channels."""
from __future__ import annotations

import functools

from tvm import tirx
from tvm.script import tirx as T

from edgeprune.compile.conv_shape import ConvShape
from edgeprune.compile.int8_kernels import Requantize
from edgeprune.compile.neon.gemm import GROUP, PIXELS, Gemm, channel_block, input_slot, padded_pixels, steps
from edgeprune.compile.neon.widen import copier, interleave


def _only_copies(shape: ConvShape) -> bool:
    """Whether the im2col matrix is the input itself (1x1, stride 1, no padding)."""
    return shape.kernel == (1, 1) and shape.strides == (1, 1) and not any(shape.padding)


@functools.cache  # parsing the TVMScript takes about half a second; a search compiles the same layers again
def conv2d(shape: ConvShape, requantize: Requantize, zero_point: int, isa: str) -> tirx.PrimFunc:
    """The PrimFunc (x, packed weights, bias, multiplier, shift, y) of one convolution on instruction
    set `isa` (gemm.ISAS), its weights packed by `gemm.pack_weights`."""
    cin, height, width, cout = shape.channels_in, shape.height, shape.width, shape.channels_out
    (kh, kw), (sh, sw), (dh, dw) = shape.kernel, shape.strides, shape.dilation
    top, left = shape.padding[:2]
    oh, ow = shape.out_height, shape.out_width
    pixels, depth = oh * ow, shape.depth
    columns = padded_pixels(pixels)
    block = channel_block(isa)
    blocks, length = -(-cout // block), steps(depth, isa) * (GROUP if isa == "dotprod" else 1)
    tile = Gemm(depth, columns, isa, pixels, requantize).tile()
    only_copies = _only_copies(shape)
    dtype = "int8" if isa == "dotprod" else "int16"
    stride = GROUP if isa == "dotprod" else 1  # between neighbouring pixels of one reduction element
    pad = tirx.const(zero_point, dtype)
    copy = copier(sw, stride, dtype)
    interleaved = only_copies and isa == "dotprod" and depth % GROUP == 0  # whole groups: eight pixels a store
    copy_groups = interleave(GROUP, depth, columns)

    def slot(k, p):
        return input_slot(k, p, columns, isa)

    @T.macro
    def im2col_row(x, col, ci, ky, kx, oy):
        k = T.meta_var((ci * kh + ky) * kw + kx)
        iy = T.meta_var(oy * sh + ky * dh - top)
        first = T.meta_var(T.min(T.max(0, (left - kx * dw + sw - 1) // sw), ow))
        last = T.meta_var(T.max(T.min(ow, (width - 1 + left - kx * dw) // sw + 1), first))
        if 0 <= iy and iy < height:
            for ox in range(first):
                col[slot(k, oy * ow + ox)] = pad
            copy(col, slot(k, oy * ow + first), x, (ci * height + iy) * width + first * sw + kx * dw - left, last - first)
            for ox in range(ow - last):
                col[slot(k, oy * ow + last + ox)] = pad
        else:
            for ox in range(ow):
                col[slot(k, oy * ow + ox)] = pad

    @T.prim_func
    def kernel(x_in: T.Buffer((1, cin, height, width), "int8"), w: T.Buffer((blocks * length * block,), dtype),
               bias: T.Buffer((cout,), "int32"), multiplier: T.Buffer((cout,), "int32"),
               shift: T.Buffer((cout,), "int8"), y_out: T.Buffer((1, cout, oh, ow), "int8")):
        x = T.decl_buffer((cin * height * width,), "int8", data=x_in.data)
        y = T.decl_buffer((cout * pixels,), "int8", data=y_out.data)
        col = T.decl_buffer((length * columns,), dtype)
        acc = T.decl_buffer((block * PIXELS,), "int32")
        tail = T.decl_buffer((PIXELS,), "int8")
        if interleaved:
            copy_groups(col, x, pixels)
        elif only_copies:
            for k in range(depth):
                copy(col, slot(k, 0), x, k * pixels, pixels)
        else:
            for ci, ky in T.grid(cin, kh):
                for kx in T.unroll(kw):  # each column's padded span is then a constant
                    for oy in range(oh):
                        im2col_row(x, col, ci, ky, kx, oy)
        for k, p in T.grid(depth, columns - pixels):
            col[slot(k, pixels + p)] = pad
        for k, p in T.grid(length - depth, columns):
            col[slot(depth + k, p)] = pad
        for pb in range(pixels // PIXELS):
            for cb in range(cout // block):
                tile(col, w, bias, multiplier, shift, y, acc, tail, cb * block, pb * PIXELS, block, PIXELS)
            if cout % block != 0:
                tile(col, w, bias, multiplier, shift, y, acc, tail, cout // block * block, pb * PIXELS, cout % block,
                     PIXELS)
        if pixels % PIXELS != 0:
            for cb in range(cout // block):
                tile(col, w, bias, multiplier, shift, y, acc, tail, cb * block, pixels // PIXELS * PIXELS, block,
                     pixels % PIXELS)
            if cout % block != 0:
                tile(col, w, bias, multiplier, shift, y, acc, tail, cout // block * block, pixels // PIXELS * PIXELS,
                     cout % block, pixels % PIXELS)

    return kernel
