"""int8 depthwise convolution (NCHW, depth multiplier M) on NEON, along the rows of a channel plane.

Each input channel is copied into a plane padded with its zero point, split by column
phase for strided kernels (phase q holds the padded columns q, q + s, q + 2s, ...), so that the
inputs of eight neighbouring output pixels under one kernel tap are always one contiguous vector.
Per output row, eight pixels at a time: one vector load and two SMLAL per tap, then the requantize
of the whole vector. The plane's border is written once; per channel only its interior is copied.
The plane is int16 (widened as it is copied) on NEON. The M55 takes this kernel on Helium too (isa
"mve": LLVM's MVE lowering of the same vector code, VLDRB.S32 and VMLA.S32 by scalar, and
requantize.py's VQRDMULH and VRSHL) with an int8 plane, widened as it is loaded, which halves the
plane in the workspace. There the plane is aligned to 8 bytes only: planes under 1024 B live on
the stack, and a 16-byte alignment makes LLVM realign the stack, which takes a register (the frame
pointer) from the inner loop."""
from __future__ import annotations

import functools

from tvm import tirx
from tvm.script import tirx as T

from edgeprune.compile.conv_shape import ConvShape
from edgeprune.compile.dsp.intrinsics import qadd
from edgeprune.compile.int8_kernels import Requantize
from edgeprune.compile.neon.gemm import PIXELS, multiply_add_s16
from edgeprune.compile.neon.requantize import vector_requantize
from edgeprune.compile.neon.widen import copier


def _scalar(weight, isa: str):
    """The int16 weight as an int32 to multiply every lane by. On MVE through QADD with 0 (the same
    value, opaque to LLVM): LLVM otherwise widens a vector of the weight (VDUP.16, VMOVLB) and
    multiplies and adds apart (VMUL, VADD), where a word in a register gives VMLA.S32 by scalar."""
    return qadd(T.Cast("int32", weight), T.int32(0)) if isa == "mve" else T.Cast("int32", weight)


def _zero(c, isa: str, stride: int):
    """0; on MVE, for rows copied whole (`stride` 1), computed from the channel `c` through QADD,
    opaque to LLVM: it otherwise hoists each plane row's address out of the channel loop and spills
    them, where one base per channel lets the row copies address the plane by immediate offsets.
    (Strided copies, element by element, measured worse with it.)"""
    return qadd(c, T.int32(0)) - c if isa == "mve" and stride == 1 else 0


def plane_dtype(isa: str) -> str:
    """The padded input plane's type on instruction set `isa`: int8 where the vector loads widen
    (MVE's VLDRB.S32), int16 on NEON, whose loads do not."""
    return "int8" if isa == "mve" else "int16"


@functools.cache  # see conv.conv2d
def depthwise_conv2d(shape: ConvShape, multiplier_count: int, requantize: Requantize, zero_point: int,
                     isa: str) -> tirx.PrimFunc:
    """The PrimFunc (x, weights int16 [C*M*KH*KW], bias, multiplier, shift, y) of a depthwise
    convolution with `multiplier_count` output channels per input channel, on instruction set `isa` (gemm.ISAS,
    or "mve")."""
    cin, height, width, cout = shape.channels_in, shape.height, shape.width, shape.channels_out
    (kh, kw), (sh, sw), (dh, dw) = shape.kernel, shape.strides, shape.dilation
    top, left = shape.padding[:2]
    oh, ow = shape.out_height, shape.out_width
    chunks = -(-ow // PIXELS)
    plane_width = chunks * PIXELS + (kw - 1) * dw // sw  # columns per phase
    plane_height = (oh - 1) * sh + (kh - 1) * dh + 1  # the padded rows any output reads
    plane_size = plane_height * plane_width
    rows = range(max(0, top), min(plane_height, top + height))  # plane rows that hold input rows
    dtype = plane_dtype(isa)
    pad = tirx.const(zero_point, dtype)
    requantize_vector = vector_requantize(requantize, isa)
    copy = copier(sw, dtype=dtype)

    @T.macro
    def chunk(plane, w, bias, multiplier, shift, y, acc, tail, c, oy, ox0, pixels):
        acc[T.Ramp(0, 1, PIXELS)] = T.Broadcast(bias[c], PIXELS)
        for ky in T.unroll(kh):
            for kx in T.unroll(kw):
                start = T.meta_var((kx * dw % sw * plane_height + oy * sh + ky * dh) * plane_width + ox0 + kx * dw // sw)
                weight = T.meta_var(w[(c * kh + ky) * kw + kx])
                if isa == "armv7":
                    acc[T.Ramp(0, 1, PIXELS)] = multiply_add_s16(acc[T.Ramp(0, 1, PIXELS)], plane[T.Ramp(start, 1, PIXELS)],
                                                                 T.Broadcast(weight, 4))
                else:
                    acc[T.Ramp(0, 1, PIXELS)] = acc[T.Ramp(0, 1, PIXELS)] + T.Cast(
                        "int32x8", plane[T.Ramp(start, 1, PIXELS)]) * T.Broadcast(_scalar(weight, isa), PIXELS)
        out = T.meta_var(requantize_vector(acc[T.Ramp(0, 1, PIXELS)], multiplier[c], shift[c]))
        if pixels == PIXELS:
            y[T.Ramp((c * oh + oy) * ow + ox0, 1, PIXELS)] = out
        else:
            tail[T.Ramp(0, 1, PIXELS)] = out
            for i in T.unroll(pixels):
                y[(c * oh + oy) * ow + ox0 + i] = tail[i]

    @T.prim_func
    def kernel(x_in: T.Buffer((1, cin, height, width), "int8"), w: T.Buffer((cout * kh * kw,), "int16"),
               bias: T.Buffer((cout,), "int32"), multiplier: T.Buffer((cout,), "int32"),
               shift: T.Buffer((cout,), "int8"), y_out: T.Buffer((1, cout, oh, ow), "int8")):
        x = T.decl_buffer((cin * height * width,), "int8", data=x_in.data)
        y = T.decl_buffer((cout * oh * ow,), "int8", data=y_out.data)
        plane = T.decl_buffer((sw * plane_size,), dtype, align=8 if isa == "mve" else 0)
        acc = T.decl_buffer((PIXELS,), "int32")
        tail = T.decl_buffer((PIXELS,), "int8")
        for i in range(sw * plane_size):
            plane[i] = pad
        for c in range(cout):
            if c % multiplier_count == 0:
                for q in T.unroll(sw):
                    first = T.meta_var(T.max(0, (left - q + sw - 1) // sw))
                    last = T.meta_var(T.min(plane_width, (width - 1 + left - q) // sw + 1))
                    for r in range(rows.start, rows.stop):
                        copy(plane, q * plane_size + r * plane_width + first + _zero(c, isa, sw), x,
                             (c // multiplier_count * height + r - top) * width + first * sw + q - left, last - first)
            for oy in range(oh):
                for ch in range(ow // PIXELS):
                    chunk(plane, w, bias, multiplier, shift, y, acc, tail, c, oy, ch * PIXELS, PIXELS)
                if ow % PIXELS != 0:
                    chunk(plane, w, bias, multiplier, shift, y, acc, tail, c, oy, ow // PIXELS * PIXELS, ow % PIXELS)

    return kernel
