"""int8 convolution (groups of 1, NCHW) as a GEMM: per pair of output pixels, an int16 column of
each pixel's receptive field (im2col, padded with the input's zero point), then the shared
micro-kernel (`gemm.py`) over the output channels, two at a time.

The column is built once per pixel and read by every output channel; its cost (a load and a
store per element) is spread over the channels. Pixels whose receptive field lies inside the
input (all of them without padding) take a path with no bounds tests."""
from __future__ import annotations

import functools

from tvm import tirx
from tvm.script import tirx as T

from edgeprune.compile.conv_shape import ConvShape
from edgeprune.compile.dsp.gemm import Gemm
from edgeprune.compile.dsp.packing import column_slot, padded_length
from edgeprune.compile.int8_kernels import Requantize

CHANNELS = 2  # output channels per GEMM tile (a one-channel tail for odd counts)


@functools.cache  # parsing the TVMScript takes about half a second; a search compiles the same layers again
def conv2d(shape: ConvShape, requantize: Requantize, zero_point: int, layout: str) -> tirx.PrimFunc:
    """The PrimFunc (x, packed weights, bias, multiplier, shift, groups, y) of one convolution;
    `groups` holds padded_length(depth) // 4 (see Gemm.tile)."""
    cin, height, width, cout = shape.channels_in, shape.height, shape.width, shape.channels_out
    (kh, kw), (sh, sw), (dh, dw) = shape.kernel, shape.strides, shape.dilation
    top, left = shape.padding[:2]
    oh, ow = shape.out_height, shape.out_width
    pixels, depth, padded = oh * ow, shape.depth, padded_length(shape.depth)
    (y_first, y_last), (x_first, x_last) = shape.interior(0), shape.interior(1)
    always_inside = y_first <= 0 and x_first <= 0 and y_last >= oh - 1 and x_last >= ow - 1
    tile = Gemm(padded, layout, pixels, 1, requantize).tile()
    weight_dtype = "int16" if layout == "int16" else "int8"
    pad = T.int8(zero_point)

    @T.macro
    def column(x, col, base, pixel):
        oy = T.meta_var(pixel // ow)
        ox = T.meta_var(pixel % ow)
        if always_inside or (y_first <= oy and oy <= y_last and x_first <= ox and ox <= x_last):
            for ci, ky in T.grid(cin, kh):
                for kx in T.unroll(kw):
                    col[base + column_slot((ci * kh + ky) * kw + kx, layout)] = T.Cast("int16", x[
                        ci * height * width + (oy * sh + ky * dh - top) * width + ox * sw + kx * dw - left])
        else:
            for ci, ky in T.grid(cin, kh):
                for kx in T.unroll(kw):
                    iy = T.meta_var(oy * sh + ky * dh - top)
                    ix = T.meta_var(ox * sw + kx * dw - left)
                    col[base + column_slot((ci * kh + ky) * kw + kx, layout)] = T.Cast("int16", T.if_then_else(
                        0 <= iy and iy < height and 0 <= ix and ix < width,
                        x[ci * height * width + iy * width + ix], pad))

    @T.prim_func
    def kernel(x_in: T.Buffer((1, cin, height, width), "int8"), w_in: T.Buffer((cout * padded,), weight_dtype),
               bias: T.Buffer((cout,), "int32"), multiplier: T.Buffer((cout,), "int32"),
               shift: T.Buffer((cout,), "int8"), groups: T.Buffer((1,), "int32"),
               y_out: T.Buffer((1, cout, oh, ow), "int8")):
        x = T.decl_buffer((cin * height * width,), "int8", data=x_in.data)
        y = T.decl_buffer((cout * pixels,), "int8", data=y_out.data)
        w = T.decl_buffer((cout * padded // 4,), "int64" if layout == "int16" else "int32", data=w_in.data)
        acc = T.decl_buffer((4,), "int32")
        col16 = T.decl_buffer((2 * padded,), "int16")
        col = T.decl_buffer((padded // 2,), "int64", data=col16.data)
        for k in T.unroll(padded - depth):
            col16[column_slot(depth + k, layout)] = T.int16(0)
            col16[padded + column_slot(depth + k, layout)] = T.int16(0)
        for pair in range(pixels // 2):
            column(x, col16, 0, pair * 2)
            column(x, col16, padded, pair * 2 + 1)
            for c in range(cout // CHANNELS):
                tile(col, w, bias, multiplier, shift, y, acc, groups, c * CHANNELS, pair * 2, CHANNELS, 2)
            if cout % CHANNELS == 1:
                tile(col, w, bias, multiplier, shift, y, acc, groups, cout - 1, pair * 2, 1, 2)
        if pixels % 2 == 1:
            column(x, col16, 0, pixels - 1)
            for c in range(cout // CHANNELS):
                tile(col, w, bias, multiplier, shift, y, acc, groups, c * CHANNELS, pixels - 1, CHANNELS, 1)
            if cout % CHANNELS == 1:
                tile(col, w, bias, multiplier, shift, y, acc, groups, cout - 1, pixels - 1, 1, 1)

    return kernel
