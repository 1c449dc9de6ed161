"""Integer-only int8: the Relax rewrite of onnxruntime's QDQ graphs into int8 kernels.

Each pattern is a `quantize(op(dequantize(x), ...))` region found with TVM's dataflow pattern
language and rewritten to one int8 kernel (`int8_kernels.py`, added to the module as a PrimFunc):
int8 x int8 -> int32 accumulation, a per-channel int32 constant (bias minus the input zero point
times the weight sums) and TFLM's Q31 requantize with the activation clamp. Ops that keep the
quantization (reshape, max pool, ReLU at the same scale) stay Relax ops on int8. A region of
elementwise activations becomes a 256-entry table lookup (`int8_table.py`). What no pattern
covers is left in float, and `CheckIntegerOnly` then names it."""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, replace

import numpy as np
import tvm
from tvm import relax
from tvm.relax import op as R
from tvm.relax.dpl import is_const, is_op, rewrite_call, wildcard

from edgeprune.compile import int8_kernels, int8_table
from edgeprune.compile.dsp import conv as dsp_conv
from edgeprune.compile.dsp import dense as dsp_dense
from edgeprune.compile.dsp import gemm as dsp_gemm
from edgeprune.compile.dsp import depthwise as dsp_depthwise
from edgeprune.compile.dsp import packing
from edgeprune.compile.dsp import nm_dense as dsp_nm
from edgeprune.compile.dsp import sparse_dense as dsp_sparse
from edgeprune.compile.mve import dense as mve_dense
from edgeprune.compile.mve import gemm as mve_gemm
from edgeprune.compile.conv_shape import ConvShape
from edgeprune.compile.neon import add as neon_add
from edgeprune.compile.neon import conv as neon_conv
from edgeprune.compile.neon import dense as neon_dense
from edgeprune.compile.neon import depthwise as neon_depthwise
from edgeprune.compile.neon import gemm as neon_gemm
from edgeprune.compile.int8_kernels import RescaleInput, Requantize
from edgeprune.compile.requantize import ROUNDINGS, quantize_multiplier
from edgeprune.compile.schedule import SCHEDULED
from edgeprune.errors import EdgepruneError, UnsupportedOpError

INT8_MIN, INT8_MAX = -128, 127
ADD_LEFT_SHIFT = 20  # TFLM's headroom for int8 residual adds
OPAQUE = 8  # relax.transform.AnnotateTIROpPattern's kOpaque: FuseOps fuses nothing into the kernel


def _value(expr) -> np.ndarray:
    return expr.value.numpy()


def _scalar(expr) -> float:
    return float(_value(expr).reshape(-1)[0])


@dataclass
class _QDQ:
    """The wildcard and constant patterns of one `dequantize(data, scale, zero_point)`."""

    data: object
    scale: object
    zero_point: object

    @classmethod
    def of(cls, data=None) -> "_QDQ":
        return cls(data if data is not None else wildcard(), is_const(), is_const())

    def dequantize(self):
        return is_op("relax.dequantize")(self.data, self.scale, self.zero_point)

    def quantize_of(self, inner):
        return is_op("relax.quantize")(inner, self.scale, self.zero_point)


def _activation_bounds(expr, scale: float, zero_point: int) -> tuple[int, int]:
    """Clamp bounds of the output after an optional ReLU/ReLU6/clip between op and quantize."""
    low, high = INT8_MIN, INT8_MAX
    if isinstance(expr, relax.Call) and getattr(expr.op, "name", "") == "relax.nn.relu":
        low = max(low, zero_point)
    elif isinstance(expr, relax.Call) and getattr(expr.op, "name", "") == "relax.clip":
        a, b = (float(v.value) for v in expr.args[1:3])
        low = max(low, zero_point + int(np.round(a / scale)))
        high = min(high, zero_point + int(np.round(b / scale)))
    return low, high


def _with_activation(pattern):
    relu = is_op("relax.nn.relu")(pattern)
    clip = is_op("relax.clip")(pattern, wildcard(), wildcard())
    return relu | clip | pattern


@dataclass(frozen=True)
class Layer:
    """What a kernel computes, for people: its kind (pointwise, conv, depthwise, dense), a short
    description with its shape, its multiply-accumulates, and how its weights are stored (int16:
    widened at compile time; int8: widened in the loop, or multiplied as int8 on Helium; block4-int8: only the non-zero blocks of
    four, `dsp/sparse_dense.py`) in how many bytes. A dense layer that was weighed for sparse
    storage says the choice (`sparse`) and its dense bytes (`dense_weight_bytes`)."""

    kind: str
    description: str
    macs: int
    weights: str
    weight_bytes: int
    sparse: str = ""
    dense_weight_bytes: int = 0

    def attrs(self) -> dict:
        return {f"edgeprune.layer.{field}": value for field, value in dataclasses.asdict(self).items()}

    @classmethod
    def of(cls, func) -> "Layer | None":
        """The layer a kernel's attributes name, if any."""
        if func.attrs is None or "edgeprune.layer.kind" not in func.attrs:
            return None
        value = {f.name: func.attrs[f"edgeprune.layer.{f.name}"] for f in dataclasses.fields(cls)}
        return cls(str(value["kind"]), str(value["description"]), int(value["macs"]), str(value["weights"]),
                   int(value["weight_bytes"]), str(value["sparse"]), int(value["dense_weight_bytes"]))


class _Rewrites:
    """Builds each pattern and its rewriter; `apply` runs them in turn. Kernels go into `builder`'s module.
    On a `family` of cores with hand-written kernels ("dsp": Armv7E-M DSP extension, `dsp/`;
    "neon": Cortex-A Advanced SIMD, `neon/`), convolutions and dense layers take those;
    `isa` is the NEON kernels' instruction set (neon.gemm.ISAS); `sparse` the DSP dense layers'
    choice of block-sparse weights (defaults.SPARSE_CHOICES); `optimize` "size" takes the DSP
    convolution kernels' smaller variants (defaults.OPTIMIZE_CHOICES); `mve`: the DSP core also has
    Helium (the M55): its dense layers and non-depthwise convolutions with int8 weights (the default
    there) take the MVE kernels (`mve/`), dense layers unless `sparse` is "on"; `pairs`: the DSP
    convolutions read int16 weights and columns by pairs (`pairs_pay`)."""

    def __init__(self, builder: relax.BlockBuilder, rounding: str, family: str | None, weights: str,
                 isa: str = "aarch64", sparse: str = "auto", optimize: str = "speed", mve: bool = False,
                 pairs: bool = False):
        self.builder, self.rounding, self.family, self.isa, self.sparse = builder, rounding, family, isa, sparse
        self.mve, self.pairs = mve, pairs
        self.size = optimize == "size"
        # auto: int16 for the DSP convolutions, int8 for dense layers and for the MVE convolutions
        self.conv_weights, self.dense_weights = (("int8" if mve else "int16", "int8") if weights == "auto"
                                                 else (weights, weights))
        self.bindings: dict = {}
        self.x, self.w, self.b, self.y = _QDQ.of(), _QDQ.of(is_const()), _QDQ.of(is_const()), _QDQ.of()
        self.minus_128: set[str] = set()  # layers with a -128 weight, outside TFLite's int8 weight range

    # ---- convolution: quantize(act(conv2d(dq(x), dq(w)) [+ reshape(dq(b))])) ----
    def conv_pattern(self):
        self.conv = is_op("relax.nn.conv2d")(self.x.dequantize(), self.w.dequantize())
        bias = is_op("relax.reshape")(self.b.dequantize(), wildcard())
        self.conv_biased = is_op("relax.add")(self.conv, bias)
        self.conv_act = _with_activation(self.conv_biased | self.conv)
        return self.y.quantize_of(self.conv_act)

    def conv_rewrite(self, _matched, m):
        attrs = m[self.conv].attrs
        weight = self._symmetric_weight(m, "conv2d")
        channels = weight.shape[0]
        bias, multiplier, shift = self._channel_constants(m, weight.reshape(channels, -1), self.conv_biased)
        x, groups = m[self.x.data], int(attrs.groups)
        depthwise = groups > 1 and groups == int(x.ty.shape[1]) and weight.shape[1] == 1
        if self.family and int(x.ty.shape[0]) == 1 and (groups == 1 or depthwise):
            convolve = self._dsp_conv if self.family == "dsp" else self._neon_conv
            return convolve(m, x, weight, _conv_shape(x, weight, attrs), depthwise, (bias, multiplier, shift))
        return self._kernel(
            "conv2d_int8", int8_kernels.conv2d, m[self.x.data], relax.const(weight.astype(np.int8)), bias, multiplier, shift,
            strides=[int(s) for s in attrs.strides], padding=[int(p) for p in attrs.padding],
            dilation=[int(d) for d in attrs.dilation], groups=int(attrs.groups),
            input_zero_point=self._zero_point(m, self.x), requantize=self._output(m, self.conv_act))

    def _dsp_conv(self, m, x, weight: np.ndarray, shape: ConvShape, depthwise: bool, constants) -> relax.Call:
        """A convolution on the DSP kernels: depthwise ones on channel planes, others as a GEMM."""
        output, zero_point = _shift_aware(self._output(m, self.conv_act), constants[2]), self._zero_point(m, self.x)
        out_shape = (1, shape.channels_out, shape.out_height, shape.out_width)
        if depthwise and self.mve:  # Helium: the NEON depthwise kernel's vector code on MVE
            return self._neon_conv(m, x, weight, shape, True, constants, isa="mve")
        if depthwise:
            kernel = dsp_depthwise.depthwise_conv2d(shape, shape.channels_out // shape.channels_in, output, zero_point)
            packed = dsp_depthwise.pack_weights(weight, shape)
            return self._prim_call("depthwise_conv2d_int8_dsp", kernel, [x, relax.const(packed), *constants],
                                   out_shape, _conv_layer(shape, True, "int16", packed.nbytes))
        helium = self.mve and self.conv_weights == "int8"  # the M55's int8 weights: the MVE GEMM
        layout = packing.MVE if helium else self.conv_weights
        fast, table = dsp_dense.constants(weight.reshape(shape.channels_out, -1), *(_value(c) for c in constants),
                                          output, tile=shape.channels_out)
        kernel = dsp_conv.conv2d(shape, output, zero_point, layout, fast, size=self.size, pairs=self.pairs)
        packed = dsp_conv.pack_weights(weight, layout, fast, self.pairs)
        padded = packing.padded_length(shape.depth, layout)
        groups = relax.const(np.array([(mve_gemm if helium else dsp_gemm).loop_count(padded)], np.int32))
        return self._prim_call("conv2d_int8_mve" if helium else "conv2d_int8_dsp", kernel,
                               [x, relax.const(packed), relax.const(table), groups], out_shape,
                               _conv_layer(shape, False, self.conv_weights, packed.nbytes))

    def _neon_conv(self, m, x, weight: np.ndarray, shape: ConvShape, depthwise: bool, constants,
                   isa: str | None = None) -> relax.Call:
        """A convolution on the NEON kernels: depthwise ones along plane rows, others as a GEMM;
        `isa` "mve": the depthwise kernel on the M55's Helium."""
        output, zero_point = _shift_aware(self._output(m, self.conv_act), constants[2]), self._zero_point(m, self.x)
        out_shape = (1, shape.channels_out, shape.out_height, shape.out_width)
        isa = isa or self.isa
        if depthwise:
            kernel = neon_depthwise.depthwise_conv2d(shape, shape.channels_out // shape.channels_in, output, zero_point,
                                                     isa)
            packed = weight.reshape(-1).astype(np.int16)
            name = "depthwise_conv2d_int8_mve" if isa == "mve" else "depthwise_conv2d_int8_neon"
            return self._prim_call(name, kernel, [x, relax.const(packed), *constants],
                                   out_shape, _conv_layer(shape, True, "int16", packed.nbytes))
        kernel = neon_conv.conv2d(shape, output, zero_point, self.isa)
        packed = neon_gemm.pack_weights(weight.reshape(shape.channels_out, -1), self.isa)
        return self._prim_call("conv2d_int8_neon", kernel, [x, relax.const(packed), *constants], out_shape,
                               _conv_layer(shape, False, str(packed.dtype), packed.nbytes))

    # ---- dense: quantize(act(matmul(dq(x), permute_dims(dq(w))) [+ dq(b)])) ----
    def dense_pattern(self):
        weight = is_op("relax.permute_dims")(self.w.dequantize())
        self.dense = is_op("relax.matmul")(self.x.dequantize(), weight)
        self.dense_biased = is_op("relax.add")(self.dense, self.b.dequantize())
        self.dense_act = _with_activation(self.dense_biased | self.dense)
        return self.y.quantize_of(self.dense_act)

    def dense_rewrite(self, _matched, m):
        weight = self._symmetric_weight(m, "dense")  # (N, K)
        bias, multiplier, shift = self._channel_constants(m, weight, self.dense_biased)
        if self.family == "dsp" and self.mve and self.dense_weights == "int8" and self.sparse != "on":
            return self._mve_dense(m, weight, (bias, multiplier, shift))
        if self.family == "dsp":
            x, (outputs, depth) = m[self.x.data], weight.shape
            x_shape = tuple(int(d) for d in x.ty.shape)
            groups = relax.const(np.array([dsp_dense.loop_count(depth, outputs)], np.int32))
            requantize = _shift_aware(self._output(m, self.dense_act), shift)
            packed = dsp_dense.pack_weights(weight, self.dense_weights)
            rows = int(np.prod(x_shape[:-1]))
            layer = Layer("dense", f"dense {depth}->{outputs}", rows * depth * outputs, self.dense_weights, packed.nbytes)
            if self.sparse != "off":
                sparse, layer = self._sparse_dense(x, weight, requantize, (bias, multiplier, shift), layer, rows)
                if sparse is not None:
                    return sparse
            fast, table = dsp_dense.constants(weight, *(_value(c) for c in (bias, multiplier, shift)), requantize)
            kernel = dsp_dense.dense(x_shape, outputs, requantize, self.dense_weights, fast)
            return self._prim_call("dense_int8_dsp", kernel, [x, relax.const(packed), relax.const(table), groups],
                                   (*x_shape[:-1], outputs), layer)
        if self.family == "neon":
            return self._neon_dense(m, weight, (bias, multiplier, shift))
        return self._kernel(
            "dense_int8", int8_kernels.dense, m[self.x.data], relax.const(weight.astype(np.int8)), bias, multiplier, shift,
            requantize=self._output(m, self.dense_act))

    def _neon_dense(self, m, weight: np.ndarray, constants) -> relax.Call:
        """A dense layer on the NEON matrix-vector kernel: int8 weights in its tile order, the
        per-output constants padded to whole tiles."""
        x, (outputs, depth) = m[self.x.data], weight.shape
        x_shape = tuple(int(d) for d in x.ty.shape)
        requantize = _shift_aware(self._output(m, self.dense_act), constants[2])
        paired = neon_dense.pairs_are_exact(weight)
        kernel = neon_dense.dense(x_shape, outputs, requantize, self.isa, paired)
        packed = neon_dense.pack_weights(weight, self.isa)
        padded = [relax.const(neon_dense.pad_channels(_value(c))) for c in constants]
        unpaired = "" if paired or self.isa == "dotprod" else ", unpaired (a -128 weight)"
        layer = Layer("dense", f"dense {depth}->{outputs}{unpaired}", int(np.prod(x_shape[:-1])) * depth * outputs,
                      "int8", packed.nbytes)
        return self._prim_call("dense_int8_neon", kernel, [x, relax.const(packed), *padded],
                               (*x_shape[:-1], outputs), layer)

    def _mve_dense(self, m, weight: np.ndarray, constants) -> relax.Call:
        """A dense layer on the MVE kernel: int8 weights in 16-byte chunks by tile, the DSP dense
        kernel's table of per-output constants."""
        x, (outputs, depth) = m[self.x.data], weight.shape
        x_shape = tuple(int(d) for d in x.ty.shape)
        requantize = _shift_aware(self._output(m, self.dense_act), constants[2])
        fast, table = dsp_dense.constants(weight, *(_value(c) for c in constants), requantize)
        packed = mve_dense.pack_weights(weight)
        layer = Layer("dense", f"dense {depth}->{outputs}", int(np.prod(x_shape[:-1])) * depth * outputs, "int8",
                      packed.nbytes)
        return self._prim_call("dense_int8_mve", mve_dense.dense(x_shape, outputs, requantize, fast),
                               [x, relax.const(packed), relax.const(table)], (*x_shape[:-1], outputs), layer)

    def _sparse_dense(self, x, weight: np.ndarray, requantize: Requantize, constants, layer: Layer,
                      rows: int) -> tuple[relax.Call | None, Layer]:
        """A DSP dense layer with sparse weights where `self.sparse` takes them (None if not), and
        `layer` with the choice: block-sparse by dsp.sparse_dense.choose; with "on", weights with at
        most 2 non-zero in every block of four take the 2:4 kernel (dsp/nm_dense.py) instead."""
        x_shape, outputs = tuple(int(d) for d in x.ty.shape), weight.shape[0]
        y_shape = (*x_shape[:-1], outputs)
        blocks = dsp_sparse.compress(weight)
        choice = dsp_sparse.choose(blocks, layer.weight_bytes, rows, self.sparse)
        layer = replace(layer, sparse=choice.describe(), dense_weight_bytes=layer.weight_bytes)
        if self.sparse == "on" and dsp_nm.is_two_of_four(weight):
            words, offsets = dsp_nm.pack(weight)
            stored = words.nbytes + offsets.nbytes
            layer = replace(layer, description=f"{layer.description} 2:4", weights="2:4-int8", weight_bytes=stored,
                            sparse=f"2:4 (--sparse on): {stored:,} B vs {layer.weight_bytes:,} B dense")
            return self._prim_call("dense_int8_dsp_2of4", dsp_nm.nm_dense(x_shape, outputs, requantize),
                                   [x, relax.const(words), relax.const(offsets), *constants], y_shape, layer), layer
        if not choice.sparse:
            return None, layer
        layer = replace(layer, description=f"{layer.description} sparse {choice.kept:.0%}", weights="block4-int8",
                        weight_bytes=blocks.nbytes)
        kernel = dsp_sparse.sparse_dense(x_shape, outputs, blocks.kept, str(blocks.indices.dtype), requantize)
        return self._prim_call("dense_int8_dsp_sparse", kernel, [x, *map(relax.const, blocks.arrays()), *constants],
                               y_shape, layer), layer

    # ---- global average: quantize([reshape](mean(dq(x)))) ----
    def mean_pattern(self):
        self.mean = is_op("relax.mean")(self.x.dequantize())
        self.mean_reshaped = is_op("relax.reshape")(self.mean, wildcard())
        return self.y.quantize_of(self.mean_reshaped | self.mean)

    def mean_rewrite(self, _matched, m):
        attrs = m[self.mean].attrs
        axes = [int(a) for a in attrs.axis]
        shape = [int(d) for d in m[self.x.data].ty.shape]
        count = int(np.prod([shape[a] for a in axes]))
        left_shift, multiplier, shift = self._averaging(m, count)
        out = self._kernel(
            "mean_int8", int8_kernels.mean, m[self.x.data], axes=axes, keepdims=bool(attrs.keepdims),
            offset=count * self._zero_point(m, self.x), left_shift=left_shift, multiplier=multiplier, shift=shift,
            requantize=self._output(m, None))
        return R.reshape(out, m[self.mean_reshaped].args[1]) if self.mean_reshaped in m else out

    # ---- add / subtract: quantize(act(add|subtract(dq(a), dq(b)))), TFLM's 20-bit headroom, broadcasting ----
    def add_pattern(self):
        self.a = _QDQ.of()
        self.add = (is_op("relax.add") | is_op("relax.subtract"))(self.a.dequantize(), self.x.dequantize())
        self.add_act = _with_activation(self.add)
        return self.y.quantize_of(self.add_act)

    def add_rewrite(self, _matched, m):
        subtract = m[self.add].op.name == "relax.subtract"
        scales = (_scalar(m[self.a.scale]), _scalar(m[self.x.scale]), _scalar(m[self.y.scale]))
        rescales, (multiplier, shift) = (_sub_multipliers if subtract else _add_multipliers)(*scales)
        inputs = tuple(RescaleInput(self._zero_point(m, q), *r) for q, r in zip((self.a, self.x), rescales))
        shape = tuple(int(d) for d in m[self.a.data].ty.shape)
        if (self.family == "neon" and shape == tuple(int(d) for d in m[self.x.data].ty.shape)
                and neon_add.takes(int(np.prod(shape)))):
            kernel = neon_add.add(shape, inputs, ADD_LEFT_SHIFT, multiplier, shift, self._output(m, self.add_act),
                                  subtract, self.isa)
            return self._prim_call("sub_int8_neon" if subtract else "add_int8_neon", kernel,
                                   [m[self.a.data], m[self.x.data]], shape)
        return self._kernel(
            "sub_int8" if subtract else "add_int8", int8_kernels.add, m[self.a.data], m[self.x.data], inputs=inputs,
            left_shift=ADD_LEFT_SHIFT, output_multiplier=multiplier, output_shift=shift,
            requantize=self._output(m, self.add_act), subtract=subtract, fusible=False)

    # ---- multiply: quantize(act(multiply(dq(a), dq(b)))), broadcasting ----
    def mul_pattern(self):
        self.mul = is_op("relax.multiply")(self.a.dequantize(), self.x.dequantize())
        self.mul_act = _with_activation(self.mul)
        return self.y.quantize_of(self.mul_act)

    def mul_rewrite(self, _matched, m):
        """TFLM's int8 MUL: one Q31 rescale of the zero-point-free product by s_a x s_b / s_y (in double)."""
        real = np.float64(_scalar(m[self.a.scale])) * np.float64(_scalar(m[self.x.scale])) / _scalar(m[self.y.scale])
        multiplier, shift = _q31(real)
        requantize = replace(self._output(m, self.mul_act), negative_shifts=shift < 0)
        return self._kernel(
            "mul_int8", int8_kernels.mul, m[self.a.data], m[self.x.data],
            zero_points=(self._zero_point(m, self.a), self._zero_point(m, self.x)), multiplier=multiplier, shift=shift,
            requantize=requantize, fusible=False)

    # ---- average pool: quantize(avg_pool2d(dq(x))), padding counted or (in the input's quantization) left out ----
    def avg_pool_pattern(self):
        self.avg_pool = is_op("relax.nn.avg_pool2d")(self.x.dequantize())
        return self.y.quantize_of(self.avg_pool)

    def avg_pool_rewrite(self, matched, m):
        attrs = m[self.avg_pool].attrs
        padding = [int(p) for p in attrs.padding]
        if attrs.ceil_mode or any(int(d) != 1 for d in attrs.dilation):
            return matched  # stays in float; CheckIntegerOnly names it
        pool = [int(k) for k in attrs.pool_size]
        if any(padding) and not attrs.count_include_pad:
            return self._valid_avg_pool(matched, m, pool, [int(s) for s in attrs.strides], padding)
        left_shift, multiplier, shift = self._averaging(m, pool[0] * pool[1])
        return self._kernel(
            "avg_pool2d_int8", int8_kernels.avg_pool2d, m[self.x.data], pool=pool,
            strides=[int(s) for s in attrs.strides], padding=padding, input_zero_point=self._zero_point(m, self.x),
            left_shift=left_shift, multiplier=multiplier, shift=shift, requantize=self._output(m, None))

    def _valid_avg_pool(self, matched, m, pool: list[int], strides: list[int], padding: list[int]):
        """An average pool whose padding is left out of each window's count (TFLM's SAME padding):
        integer only where the output keeps the input's quantization, as TFLite's always does."""
        if not (np.isclose(_scalar(m[self.x.scale]), _scalar(m[self.y.scale]), rtol=1e-6)
                and self._zero_point(m, self.x) == self._zero_point(m, self.y)):
            return matched  # stays in float; CheckIntegerOnly names it
        return self._kernel("avg_pool2d_int8", int8_kernels.avg_pool2d_valid, m[self.x.data], pool=pool,
                            strides=strides, padding=padding, requantize=self._output(m, None))

    # ---- concat: quantize(concat((dq(a), dq(b), ...))), each input rescaled to the output ----
    def concat_pattern(self):
        self.concat = is_op("relax.concat")(wildcard())
        return self.y.quantize_of(self.concat)

    def concat_rewrite(self, matched, m):
        sy, zy = _scalar(m[self.y.scale]), self._zero_point(m, self.y)
        fields = self._bound(m[self.concat].args[0])
        tensors, specs = [], []
        for field in getattr(fields, "fields", ()):
            dq = self._bound(field)
            if not (isinstance(dq, relax.Call) and getattr(dq.op, "name", "") == "relax.dequantize"
                    and all(isinstance(a, tvm.ir.Constant) for a in dq.args[1:3])):
                return matched
            scale, zero_point = _scalar(dq.args[1]), int(_scalar(dq.args[2]))
            tensors.append(dq.args[0])
            same = np.isclose(scale, sy, rtol=1e-6) and zero_point == zy
            specs.append(None if same else RescaleInput(zero_point, *_q31(scale / (sy * (1 << ADD_LEFT_SHIFT)))))
        if not tensors:
            return matched
        return self._kernel("concat_int8", int8_kernels.concat, *tensors, axis=int(m[self.concat].attrs.axis),
                            inputs=tuple(specs), left_shift=ADD_LEFT_SHIFT, requantize=self._output(m, None),
                            fusible=False)

    # ---- ops that keep the quantization: quantize(op(dq(x))) with the same scale/zero point ----
    def same_scale_pattern(self):
        self.same = (is_op("relax.reshape")(self.x.dequantize(), wildcard())
                     | is_op("relax.permute_dims")(self.x.dequantize())
                     | is_op("relax.nn.max_pool2d")(self.x.dequantize())
                     | is_op("relax.nn.relu")(self.x.dequantize())
                     | self._gather_pattern())
        return self.y.quantize_of(self.same)

    def _gather_pattern(self):
        """Ops that pick input elements (a max, a nearest-neighbour resize) or drop or add unit axes."""
        return (is_op("relax.max")(self.x.dequantize()) | is_op("relax.image.resize2d")(self.x.dequantize(), wildcard())
                | is_op("relax.squeeze")(self.x.dequantize()) | is_op("relax.expand_dims")(self.x.dequantize()))

    def same_scale_rewrite(self, matched, m):
        if not (np.isclose(_scalar(m[self.x.scale]), _scalar(m[self.y.scale]), rtol=1e-6)
                and _scalar(m[self.x.zero_point]) == _scalar(m[self.y.zero_point])):
            return matched
        op = m[self.same]
        name = op.op.name
        if name == "relax.image.resize2d" and op.attrs.method != "nearest_neighbor":
            return matched  # interpolation makes new values: stays in float; CheckIntegerOnly names it
        if name == "relax.nn.relu":
            return R.maximum(m[self.x.data], relax.const(self._zero_point(m, self.y), "int8"))
        return relax.Call(op.op, [m[self.x.data], *op.args[1:]], op.attrs)

    # ---- elementwise activations: quantize(f(dq(x))) as a table of f for each int8 value ----
    def table_pattern(self):
        return is_op("relax.quantize")(wildcard(), is_const(), is_const())

    def table_rewrite(self, matched, _m):
        found = int8_table.region_table(matched, self.bindings)
        if found is None:
            return matched  # not elementwise in one int8 tensor: stays in float; CheckIntegerOnly names it
        x, table = found
        return self._kernel("table_int8", int8_table.lookup, x, relax.const(table))

    # ---- quantize(dequantize(x)) with equal parameters is x ----
    def identity_pattern(self):
        return self.y.quantize_of(is_op("relax.dequantize")(self.x.data, self.y.scale, self.y.zero_point))

    def identity_rewrite(self, _matched, m):
        return m[self.x.data]

    def _kernel(self, name: str, compute, *tensors: relax.Expr, fusible: bool = True, **options) -> relax.Call:
        """A call_tir of `compute` (a TE kernel of int8_kernels) on `tensors`; the options are fixed
        when the PrimFunc is built. A kernel that is not `fusible` takes no producer into it: a
        residual add would otherwise inline each convolution's requantize three times per use."""
        attrs = {} if fusible else {"op_pattern": OPAQUE}
        return self.builder.call_te(functools.partial(compute, **options), *tensors, primfunc_name_hint=name,
                                    primfunc_attrs=attrs)

    def _prim_call(self, name: str, func, args: list, shape: tuple[int, ...], layer: "Layer | None" = None) -> relax.Call:
        """A call_tir of a hand-written PrimFunc (no schedule pass touches it) giving int8 `shape`;
        a conv or dense kernel carries what layer it computes (the manifest's steps show it)."""
        attrs = {"op_pattern": OPAQUE, SCHEDULED: True, **(layer.attrs() if layer else {})}
        gv = self.builder.add_func(func.with_attrs(attrs), name)
        return relax.call_tir(gv, args, relax.TensorType(shape, "int8"))

    def _bound(self, expr):
        """What a dataflow variable is bound to (the expression itself otherwise)."""
        return self.bindings.get(expr, expr) if isinstance(expr, relax.Var) else expr

    def _averaging(self, m, count: int) -> tuple[int, int, int]:
        """(left shift, Q31 multiplier, shift) that turn a sum of `count` input differences into
        the output's int8 mean: input scale / (count x output scale), with headroom."""
        left_shift = _headroom(count)
        return (left_shift, *_q31(_scalar(m[self.x.scale]) / (count * _scalar(m[self.y.scale]) * (1 << left_shift))))

    @staticmethod
    def _zero_point(m, qdq: _QDQ) -> int:
        return int(_scalar(m[qdq.zero_point]))

    def _symmetric_weight(self, m, op: str) -> np.ndarray:
        if np.any(_value(m[self.w.zero_point]) != 0):
            raise UnsupportedOpError(f"int8 {op} needs symmetric weights (weight zero point 0)")
        weight = _value(m[self.w.data]).astype(np.int32)
        if weight.min(initial=0) < -127:
            self.minus_128.add(f"{op} {'x'.join(map(str, weight.shape))}")
        return weight

    def _channel_constants(self, m, weight_rows: np.ndarray, biased) -> tuple[tvm.ir.Constant, ...]:
        """Per output channel: the int32 bias minus the input zero point times the weight sum, and
        the Q31 multiplier (int32) and shift (int8) of input scale x weight scale / output scale."""
        channels = weight_rows.shape[0]
        bias = (_value(m[self.b.data]).astype(np.int64).reshape(-1) if biased in m
                else np.zeros(channels, np.int64))
        bias = bias - self._zero_point(m, self.x) * weight_rows.sum(axis=1)
        real = (_scalar(m[self.x.scale]) * np.broadcast_to(_value(m[self.w.scale]).astype(np.float64).reshape(-1),
                                                           channels) / _scalar(m[self.y.scale]))
        multiplier, shift = quantize_multiplier(real)
        return (relax.const(bias.astype(np.int32)), relax.const(multiplier.astype(np.int32)),
                relax.const(shift.astype(np.int8)))

    def _output(self, m, activation) -> Requantize:
        """The output's zero point and its clamp: int8's range narrowed by a fused ReLU/ReLU6/clip."""
        sy, zy = _scalar(m[self.y.scale]), self._zero_point(m, self.y)
        low, high = (INT8_MIN, INT8_MAX) if activation is None else _activation_bounds(m[activation], sy, zy)
        return Requantize(zy, low, high, rounding=self.rounding)

    def apply(self, func: relax.Function) -> relax.Function:
        rules = [(self.conv_pattern(), self.conv_rewrite), (self.dense_pattern(), self.dense_rewrite),
                 (self.mean_pattern(), self.mean_rewrite), (self.add_pattern(), self.add_rewrite),
                 (self.mul_pattern(), self.mul_rewrite),
                 (self.avg_pool_pattern(), self.avg_pool_rewrite), (self.concat_pattern(), self.concat_rewrite),
                 (self.same_scale_pattern(), self.same_scale_rewrite),
                 (self.identity_pattern(), self.identity_rewrite), (self.table_pattern(), self.table_rewrite)]
        for pattern, rewriter in rules:
            self.bindings = relax.analysis.get_var2val(func)
            func = rewrite_call(pattern, rewriter, func)
        return func


def _conv_shape(x: relax.Expr, weight: np.ndarray, attrs) -> ConvShape:
    """The static shape of a convolution of `x` (NCHW, batch 1) by OIHW `weight`."""
    _, cin, height, width = (int(d) for d in x.ty.shape)
    return ConvShape(cin, height, width, weight.shape[0], tuple(weight.shape[2:]),
                     *(tuple(int(v) for v in getattr(attrs, a)) for a in ("strides", "padding", "dilation")))


def _conv_layer(shape: ConvShape, depthwise: bool, weights: str, weight_bytes: int) -> Layer:
    """What a convolution computes, for the manifest: e.g. `conv 1x1 s1 64->64 @25x5`."""
    (kh, kw), stride, at = shape.kernel, shape.strides[0], f"@{shape.out_height}x{shape.out_width}"
    pixels = shape.out_height * shape.out_width
    if depthwise:
        return Layer("depthwise", f"depthwise {kh}x{kw} s{stride} {shape.channels_out} {at}",
                     shape.channels_out * pixels * kh * kw, weights, weight_bytes)
    return Layer("pointwise" if (kh, kw) == (1, 1) else "conv",
                 f"conv {kh}x{kw} s{stride} {shape.channels_in}->{shape.channels_out} {at}",
                 shape.channels_out * pixels * shape.depth, weights, weight_bytes)


def _shift_aware(requantize: Requantize, shift: tvm.ir.Constant) -> Requantize:
    """The requantize with its shorter rounding where every channel's shift is negative."""
    return replace(requantize, negative_shifts=bool(np.all(_value(shift) < 0)))


def _headroom(count: int) -> int:
    """The left shift (at most ADD_LEFT_SHIFT) that keeps a sum of `count` int8 differences below
    2**30: the requantize's first rounding then falls far below an output LSB."""
    return max(0, min(ADD_LEFT_SHIFT, 30 - (count * 255).bit_length()))


_Q31 = tuple[int, int]  # multiplier, shift


def _add_multipliers(scale_a: float, scale_b: float, scale_y: float) -> tuple[tuple[_Q31, _Q31], _Q31]:
    """TFLM's ADD rescales (in double): each input to twice the larger input scale, and the sum,
    shifted left by ADD_LEFT_SHIFT, to the output. ((input rescales), output rescale) as Q31."""
    twice_max = 2 * max(scale_a, scale_b)
    return ((_q31(scale_a / twice_max), _q31(scale_b / twice_max)),
            _q31(twice_max / ((1 << ADD_LEFT_SHIFT) * scale_y)))


def _sub_multipliers(scale_a: float, scale_b: float, scale_y: float) -> tuple[tuple[_Q31, _Q31], _Q31]:
    """TFLM's SUB rescales: those of ADD, but computed in float32 as TFLM's sub does."""
    a, b, y = np.float32(scale_a), np.float32(scale_b), np.float32(scale_y)
    twice_max = np.float32(2) * max(a, b)
    return ((_q31(float(a / twice_max)), _q31(float(b / twice_max))),
            _q31(float(twice_max / (np.float32(1 << ADD_LEFT_SHIFT) * y))))


def _q31(real: float) -> _Q31:
    multiplier, shift = quantize_multiplier(np.array(real))
    return int(multiplier), int(shift)


def has_dsp(target) -> bool:
    """Whether a TVM target's core has the Armv7E-M DSP extension (LLVM's reading of its CPU)."""
    return target is not None and bool(target.attrs.get("feature.has_dsp", False))


def has_mve(target) -> bool:
    """Whether a TVM target's core has the M-profile Vector Extension (Helium), LLVM's reading of its CPU."""
    return target is not None and bool(target.attrs.get("feature.has_mve", False))


def pairs_pay(target) -> bool:
    """Whether the DSP convolutions' GEMM reads int16 weights and columns by pairs (dsp.conv.interleaved)
    on a TVM target's core: not on the Cortex-M7, where LLVM then loads most of them a word at a time
    instead of by LDRD (KWS on mps2-an500: 3,425,080 -> 3,912,920 instructions; the M4 and the M33 gain,
    3,315,600 -> 3,227,360)."""
    return target is not None and str(target.attrs.get("mcpu", "")) != "cortex-m7"


def kernel_family(target) -> str | None:
    """Which hand-written int8 kernels a TVM target's core takes: "dsp" (Armv7E-M DSP extension),
    "neon" (Advanced SIMD on a Linux Cortex-A board), or None (the portable TE kernels)."""
    if has_dsp(target):
        return "dsp"
    if target is not None and bool(target.attrs.get("feature.has_asimd", False)):
        return "neon"
    return None


def _isa(target) -> str:
    """The NEON kernels' instruction set for a target (neon.gemm.ISAS)."""
    if target is None or not bool(target.attrs.get("feature.is_aarch64", False)):
        return "armv7"
    return "dotprod" if bool(target.attrs.get("feature.has_dotprod", False)) else "aarch64"


MINUS_128 = "edgeprune.minus_128_weights"


def lower_qdq_to_integer(mod: tvm.IRModule, rounding: str = "double", target=None,
                         weights: str = "auto", sparse: str = "auto", optimize: str = "speed") -> tvm.IRModule:
    """Rewrite the QDQ regions of every Relax function into integer-only kernels, requantizing
    with TFLM's `rounding` ("double", its default, or "single"; see int8_kernels.Requantize).
    Without a `target` (a host build) every kernel is the portable TE one. On DSP cores,
    `weights` is how the DSP kernels store weights: "int16" (widened at compile time: fastest),
    "int8" (a byte per weight, widened in the loop), or "auto": int16 for convolutions, which use
    each weight at every pixel, int8 for dense layers, which read each weight once; on Helium
    cores (`has_mve`) auto is int8 for both, which the MVE kernels multiply as they are.
    `sparse` decides the DSP dense layers' block-sparse weights: "auto" (per layer, where they
    store fewer bytes at no more estimated instructions, dsp.sparse_dense.choose), "on", "off".
    `optimize` "size" takes the DSP convolutions' smaller kernels (same integers, more instructions)."""
    if rounding not in ROUNDINGS:
        raise EdgepruneError(f"unknown requantize rounding {rounding!r}; choose one of {', '.join(ROUNDINGS)}")
    builder = relax.BlockBuilder(mod)
    minus_128: set[str] = set()
    for gv, func in list(mod.functions.items()):
        if isinstance(func, relax.Function):
            rewrites = _Rewrites(builder, rounding, kernel_family(target), weights, _isa(target), sparse, optimize,
                                 has_mve(target), pairs_pay(target))
            builder.update_func(gv, rewrites.apply(func))
            minus_128 |= rewrites.minus_128
    lowered = relax.transform.DeadCodeElimination()(builder.get())
    return lowered.with_attr(MINUS_128, sorted(minus_128))


def layers_with_minus_128(mod: tvm.IRModule) -> list[str]:
    """The conv/dense layers (op and weight shape) of a lowered model that hold a -128 weight."""
    return [str(s) for s in mod.attrs[MINUS_128]] if mod.attrs is not None and MINUS_128 in mod.attrs else []
