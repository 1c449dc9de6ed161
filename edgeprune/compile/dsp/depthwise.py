"""int8 depthwise convolution (NCHW, depth multiplier M) on the rows of a channel plane.

Each input channel is first copied into a plane padded with its zero point, so that every output
pixel reads a full window with no bounds tests. For 3-wide kernels, one 32-bit load of four
neighbouring inputs b0..b3 serves a whole kernel row: SXTB16 gives (b0, b2) and (b1, b3), and
with the row's outer weights packed as (w0, w2)
    pixel x:     w0*b0 + w2*b2 (SMLAD) + w1*b1 (SMLABB)
    pixel x + 1: w0*b1 + w2*b3 (SMLAD) + w1*b2 (SMLATB)   (stride 1)
so two pixels take 7 instructions per kernel row (6 MACs). The middle weights w1 of two rows
share a word (SMLABT and SMLATT read the odd row's): a 3x3 kernel's weights are 5 words, not 6,
and LLVM keeps one register more for the rest (measured on the M4: KWS depthwise 2.84 -> 2.73
instructions per MAC, VWW's 3.01 -> 2.91). Other kernel widths multiply and add one weight at
a time."""
from __future__ import annotations

import functools

import numpy as np
from tvm import tirx
from tvm.script import tirx as T

from edgeprune.compile.conv_shape import ConvShape
from edgeprune.compile.dsp.intrinsics import smlabb, smlabt, smlad, smlatb, smlatt, sxtb16, sxtb16_odd
from edgeprune.compile.int8_kernels import Requantize


def by_rows(shape: ConvShape) -> bool:
    """Whether a kernel row is read with one word (3 wide, no dilation along it)."""
    return shape.kernel[1] == 3 and shape.dilation[1] == 1


def pack_weights(weight: np.ndarray, shape: ConvShape) -> np.ndarray:
    """Depthwise weights [C*M, 1, KH, KW] as the kernel reads them: with `by_rows`, per channel
    the int16 word (w0, w2) of each row, then the rows' w1 two to a word (the last one padded
    with 0); otherwise int16 in their natural order."""
    channels, _, rows, _ = weight.shape
    if not by_rows(shape):
        return weight.reshape(-1).astype(np.int16)
    outer = np.stack([weight[:, 0, :, 0], weight[:, 0, :, 2]], axis=2).reshape(channels, 2 * rows)
    middle = np.zeros((channels, 2 * ((rows + 1) // 2)), np.int16)
    middle[:, :rows] = weight[:, 0, :, 1]
    return np.concatenate([outer, middle], axis=1).astype(np.int16).reshape(-1)


def _plus_middle(inputs, high: bool, middle, row, acc):
    """acc + the `inputs` lane (hi if `high`, else lo) times kernel row `row`'s middle weight: the lo
    lane of `middle` for even rows, the hi lane for odd ones (SMLA<x><y>; the row is a constant
    once the kernel rows are unrolled)."""
    even_row, odd_row = (smlatb, smlatt) if high else (smlabb, smlabt)
    return T.if_then_else(row % 2 == 0, even_row(inputs, middle, acc), odd_row(inputs, middle, acc))


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
    rows_words = kh + (kh + 1) // 2  # int32 words of packed weights per output channel (3-wide kernels)
    fast = by_rows(shape)
    pairs = fast and sw == 1
    taps = kh * kw
    first_single = ow // 2 * 2 if pairs else 0  # the pixels left after the pairs
    weight_count = cout * rows_words * 2 if fast else cout * taps

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
                                outer = T.meta_var(w[oc * rows_words + ky])
                                middle = T.meta_var(w[oc * rows_words + kh + ky // 2])
                                acc[0] = _plus_middle(odd, False, middle, ky, smlad(even, outer, acc[0]))
                                acc[1] = _plus_middle(even, True, middle, ky, smlad(odd, outer, acc[1]))
                            store(y, multiplier, shift, oc, oy, pair * 2, acc[0])
                            store(y, multiplier, shift, oc, oy, pair * 2 + 1, acc[1])
                        for ox in range(first_single, ow):
                            one = T.decl_buffer((1,), "int32")
                            one[0] = bias[oc]
                            for ky in T.unroll(kh):
                                word = T.meta_var(T.reinterpret("int32", plane[T.ramp(
                                    (oy * sh + ky * dh) * pw + ox * sw, 1, 4)]))
                                outer = T.meta_var(w[oc * rows_words + ky])
                                middle = T.meta_var(w[oc * rows_words + kh + ky // 2])
                                one[0] = _plus_middle(sxtb16_odd(word), False, middle, ky,
                                                      smlad(sxtb16(word), outer, one[0]))
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
