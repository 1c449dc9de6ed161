"""int8 depthwise convolution (NCHW, depth multiplier M) on the rows of a channel plane.

Each input channel is first copied into a plane padded with its zero point, so that every output
pixel reads a full window with no bounds tests. For 3-wide kernels, one 32-bit load of four
neighbouring inputs b0..b3 serves a whole kernel row: SXTB16 gives (b0, b2) and (b1, b3), and
with the row's weights packed as (w0, w2) and (w1, 0)
    pixel x:     w0*b0 + w2*b2 (SMLAD) + w1*b1 (SMLABB)
    pixel x + 1: w0*b1 + w2*b3 (SMLAD) + w1*b2 (SMLATB)   (stride 1)
so two pixels take 7 instructions per kernel row (6 MACs). Other kernel widths multiply and add
one weight at a time."""
from __future__ import annotations

import functools

import numpy as np
from tvm import tirx
from tvm.script import tirx as T

from edgeprune.compile.conv_shape import ConvShape
from edgeprune.compile.dsp.intrinsics import smlabb, smlad, smlatb, sxtb16, sxtb16_odd
from edgeprune.compile.int8_kernels import Requantize


def by_rows(shape: ConvShape) -> bool:
    """Whether a kernel row is read with one word (3 wide, no dilation along it)."""
    return shape.kernel[1] == 3 and shape.dilation[1] == 1


def pack_weights(weight: np.ndarray, shape: ConvShape) -> np.ndarray:
    """Depthwise weights [C*M, 1, KH, KW] as the kernel reads them: with `by_rows`, per channel and
    row the int16 words (w0, w2) and (w1, 0); otherwise int16 in their natural order."""
    channels, _, rows, _ = weight.shape
    if not by_rows(shape):
        return weight.reshape(-1).astype(np.int16)
    packed = np.zeros((channels, rows, 4), np.int16)
    packed[:, :, 0], packed[:, :, 1], packed[:, :, 2] = weight[:, 0, :, 0], weight[:, 0, :, 2], weight[:, 0, :, 1]
    return packed.reshape(-1)


@functools.cache  # see conv.conv2d
def depthwise_conv2d(shape: ConvShape, multiplier_count: int, requantize: Requantize,
                     zero_point: int) -> tirx.PrimFunc:
    """The PrimFunc (x, packed weights, bias, multiplier, shift, y) of a depthwise convolution with
    `multiplier_count` output channels per input channel; shape.channels_out = C * M."""
    cin, height, width, cout = shape.channels_in, shape.height, shape.width, shape.channels_out
    (kh, kw), (sh, sw), (dh, dw) = shape.kernel, shape.strides, shape.dilation
    top, left, bottom, right = shape.padding
    oh, ow = shape.out_height, shape.out_width
    # The padded plane, plus 3 bytes of slack so that a 4-byte load at the last column stays inside.
    ph, pw = height + top + bottom, width + left + right
    plane_bytes = ph * pw + 3
    rows_words = kh * 2  # int32 words of packed weights per output channel (3-wide kernels)
    fast = by_rows(shape)
    pairs = fast and sw == 1
    taps = kh * kw
    first_single = ow // 2 * 2 if pairs else 0  # the pixels left after the pairs
    weight_count = cout * kh * 4 if fast else cout * taps

    @T.macro
    def store(y, multiplier, shift, oc, oy, ox, value):
        y[(oc * oh + oy) * ow + ox] = requantize(value, multiplier[oc], shift[oc])

    @T.prim_func
    def kernel(x_in: T.Buffer((1, cin, height, width), "int8"), w_in: T.Buffer((weight_count,), "int16"),
               bias: T.Buffer((cout,), "int32"), multiplier: T.Buffer((cout,), "int32"),
               shift: T.Buffer((cout,), "int8"), y_out: T.Buffer((1, cout, oh, ow), "int8")):
        x = T.decl_buffer((cin * height * width,), "int8", data=x_in.data)
        y = T.decl_buffer((cout * oh * ow,), "int8", data=y_out.data)
        w = T.decl_buffer((weight_count // 2,), "int32", data=w_in.data)
        plane = T.decl_buffer((plane_bytes,), "int8")
        for i in range(plane_bytes):
            plane[i] = T.int8(zero_point)
        for c in range(cin):
            for iy, ix in T.grid(height, width):
                plane[(iy + top) * pw + ix + left] = x[(c * height + iy) * width + ix]
            for m in range(multiplier_count):
                oc = T.meta_var(c * multiplier_count + m)
                for oy in range(oh):
                    if fast:
                        for pair in range(ow // 2 if pairs else 0):
                            acc = T.decl_buffer((2,), "int32")
                            acc[0] = bias[oc]
                            acc[1] = bias[oc]
                            for ky in T.unroll(kh):
                                word = T.meta_var(T.reinterpret("int32", plane[T.ramp(
                                    (oy * sh + ky * dh) * pw + pair * 2, 1, 4)]))
                                even = T.meta_var(sxtb16(word))
                                odd = T.meta_var(sxtb16_odd(word))
                                acc[0] = smlabb(odd, w[oc * rows_words + ky * 2 + 1],
                                                smlad(even, w[oc * rows_words + ky * 2], acc[0]))
                                acc[1] = smlatb(even, w[oc * rows_words + ky * 2 + 1],
                                                smlad(odd, w[oc * rows_words + ky * 2], acc[1]))
                            store(y, multiplier, shift, oc, oy, pair * 2, acc[0])
                            store(y, multiplier, shift, oc, oy, pair * 2 + 1, acc[1])
                        for ox in range(first_single, ow):
                            one = T.decl_buffer((1,), "int32")
                            one[0] = bias[oc]
                            for ky in T.unroll(kh):
                                word = T.meta_var(T.reinterpret("int32", plane[T.ramp(
                                    (oy * sh + ky * dh) * pw + ox * sw, 1, 4)]))
                                one[0] = smlabb(sxtb16_odd(word), w[oc * rows_words + ky * 2 + 1],
                                                smlad(sxtb16(word), w[oc * rows_words + ky * 2], one[0]))
                            store(y, multiplier, shift, oc, oy, ox, one[0])
                    else:
                        for ox in range(ow):
                            total = T.decl_buffer((1,), "int32")
                            total[0] = bias[oc]
                            for ky, kx in T.grid(kh, kw):
                                total[0] = total[0] + T.Cast("int32", plane[(oy * sh + ky * dh) * pw + ox * sw + kx * dw]) \
                                    * T.Cast("int32", w_in[oc * taps + ky * kw + kx])
                            store(y, multiplier, shift, oc, oy, ox, total[0])

    return kernel
