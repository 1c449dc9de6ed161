"""int8 `.tflite` models: the MLPerf Tiny KWS and AD models compiled from their files equal TFLite
Micro's interpreter bit for bit (on the host build of the integer graph and on QEMU), the C API
takes and returns the file's tensors, bad files are clear errors, and the README's op table is
the code's. The models come from ../shared/models (beside the project root, as in CI)."""
from pathlib import Path

import numpy as np
import pytest
import tflite

import edgeprune
from edgeprune.cli import main
from edgeprune.compile import op_tables
from edgeprune.compile.api import step_label
from edgeprune.compile.host import host_graph
from edgeprune.compile.tflite_frontend import SUPPORTED_OPS, import_tflite, model_edges
from edgeprune.errors import EdgepruneError, UnsupportedOpError
from edgeprune.profile.run import run
from edgeprune.reference import tflm_outputs

MODELS = Path(__file__).resolve().parents[1].parent / "shared" / "models"
KWS, AD = MODELS / "kws_ref_model.tflite", MODELS / "ad01_int8.tflite"
README = Path(__file__).resolve().parents[1] / "README.md"


def _digits(shape: tuple[int, ...], count: int) -> list[np.ndarray]:
    """scikit-learn digits resized to the input (NHWC or flat), their [0, 1] spread over int8's range."""
    from edgeprune.models.data import digits

    flat = len(shape) == 2
    images = digits((1, shape[1]) if flat else (1, shape[3], shape[1], shape[2])).x_test[:count]
    images = images if flat else images.transpose(0, 2, 3, 1)
    return [np.round(image * 255 - 128).astype(np.int8).reshape(shape) for image in images]


def _tflm(path: Path, inputs: list[np.ndarray], count: int) -> list[np.ndarray]:
    """TFLM's first `count` outputs of the file at `path`, its int8 edges read by the front end."""
    input_edges, output_edges = ([(e.scale, e.zero_point) for e in edges] for edges in model_edges(path))
    return tflm_outputs(path, inputs, input_edges, output_edges[:count])


def _inputs(shape: tuple[int, ...], count: int, seed: int) -> list[np.ndarray]:
    """`count` seeded random int8 tensors, two digits-derived ones, then the saturating extremes."""
    rng = np.random.default_rng(seed)
    return ([rng.integers(-128, 128, shape).astype(np.int8) for _ in range(count)] + _digits(shape, 2)
            + [np.full(shape, value, np.int8) for value in (-128, 127)])


@pytest.mark.parametrize("path, shape", [(KWS, (1, 49, 10, 1)), (AD, (1, 640))])
def test_integer_graph_equals_tflm_bit_for_bit(path, shape):
    """The imported integer graph, built for the host, on 40 random and 2 extreme inputs."""
    host = host_graph(import_tflite(path)[0])
    for x in _inputs(shape, 40, seed=1):
        assert np.array_equal(host(x)[0], _tflm(path, [x], 1)[0])


@pytest.mark.slow
@pytest.mark.parametrize("path, shape", [(KWS, (1, 49, 10, 1)), (AD, (1, 640))])
def test_every_intermediate_tensor_equals_tflm(tmp_path, path, shape):
    """Every operator's output made a model output (`_every_output`): the host build of the integer
    graph equals TFLM on each of them."""
    every = _edited(tmp_path, "every", _every_output, source=path)
    count = tflite.Model.GetRootAsModel(path.read_bytes(), 0).Subgraphs(0).OperatorsLength()
    assert len(model_edges(every)[1]) == count
    host = host_graph(import_tflite(every)[0])
    for x in _inputs(shape, 2, seed=3):
        outputs = zip(host(x), _tflm(every, [x], count), strict=True)
        for operator, (got, expected) in enumerate(outputs):
            assert np.array_equal(got, expected), f"{path.name} after operator #{operator}"


# ---- op variants: the KWS model edited with the schema's object API, each against TFLM ----
def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    return schema


def _edited(tmp_path: Path, name: str, edit, source: Path = KWS) -> Path:
    import flatbuffers

    model = _schema().ModelT.InitFromPackedBuf(source.read_bytes(), 0)
    edit(model, model.subgraphs[0])
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(bytes(builder.Output()))
    return path


def _every_output(model, graph) -> None:
    """Each operator's output a graph output, in operator order: TFLM keeps graph outputs alive,
    so its interpreter reports every intermediate tensor."""
    graph.outputs = [op.outputs[0] for op in graph.operators]


POOL = 9  # KWS's AVERAGE_POOL_2D, on a (1, 25, 5, 64) input


def _max_pool(model, graph, window=None, activation=0):
    op = graph.operators[POOL]
    code = model.operatorCodes[op.opcodeIndex]
    code.builtinCode = code.deprecatedBuiltinCode = tflite.BuiltinOperator.MAX_POOL_2D
    op.builtinOptions.fusedActivationFunction = activation
    if window is not None:  # 3x3, stride 2, SAME: odd sizes and padding; the model then ends at the pool
        o = op.builtinOptions
        o.filterHeight = o.filterWidth = 3
        o.strideH = o.strideW = 2
        o.padding = tflite.Padding.SAME
        graph.tensors[op.outputs[0]].shape = [1, 13, 3, 64]
        graph.outputs = [op.outputs[0]]
        graph.operators = graph.operators[:POOL + 1]


def _activation(op_index: int, activation: int, last: bool = False):
    """The fused `activation` on operator `op_index`; `last`: the model then ends there."""
    def edit(_model, graph):
        graph.operators[op_index].builtinOptions.fusedActivationFunction = activation
        if last:
            graph.outputs = [graph.operators[op_index].outputs[0]]
            graph.operators = graph.operators[:op_index + 1]
    return edit


def _per_tensor_depthwise(_model, graph):
    quantization = graph.tensors[graph.operators[1].inputs[1]].quantization
    quantization.scale, quantization.zeroPoint = [float(max(quantization.scale))], [0]


def _code(model, builtin: int, version: int) -> int:
    """Index of a new operator code for `builtin`."""
    code = _schema().OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = builtin
    code.version = version
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _int8_tensor(graph, shape: list[int], name: bytes, quantization=None, scale: float = 0.0,
                 zero_point: int = 0) -> int:
    """Index of a new int8 activation tensor, with `quantization` or a per-tensor scale and zero point."""
    schema = _schema()
    tensor = schema.TensorT()
    tensor.shape, tensor.type, tensor.buffer, tensor.name = shape, tflite.TensorType.INT8, 0, name
    if quantization is None:
        quantization = schema.QuantizationParametersT()
        quantization.scale, quantization.zeroPoint = [scale], [zero_point]
    tensor.quantization = quantization
    graph.tensors.append(tensor)
    return len(graph.tensors) - 1


def _end_with(model, graph, after: int, builtin: int, version: int, inputs: list[int], output: int,
              options_type: int = 0, options=None) -> None:
    """Keep operators 0..`after`, then the new operator, whose output becomes the model's output."""
    op = _schema().OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = _code(model, builtin, version), inputs, [output]
    op.builtinOptionsType, op.builtinOptions = options_type, options
    graph.operators = graph.operators[:after + 1] + [op]
    graph.outputs = [output]


def _residual_add(model, graph, activation=0):
    """ADD of the depthwise convolution #3 and its input, as the model's output (quantization of its own)."""
    first, second = graph.operators[3].inputs[0], graph.operators[3].outputs[0]
    scale = 1.3 * max(graph.tensors[i].quantization.scale[0] for i in (first, second))
    _end_with_binary(model, graph, 3, "ADD", [first, second], [1, 25, 5, 64], scale, -11, activation)


_BINARY = {"ADD": (2, "AddOptions"), "SUB": (2, "SubOptions"), "MUL": (2, "MulOptions")}
CONV, POOLED = 8, 9  # KWS's last convolution, (1, 25, 5, 64), and its average pool, (1, 1, 1, 64)


def _end_with_binary(model, graph, after: int, name: str, inputs: list[int], shape: list[int], scale: float,
                     zero_point: int, activation: int = 0, version: int | None = None) -> None:
    """The model cut after operator `after`, then ADD, SUB or MUL of `inputs` into a new output tensor."""
    default, options_name = _BINARY[name]
    options = getattr(_schema(), options_name + "T")()
    options.fusedActivationFunction = activation
    _end_with(model, graph, after, getattr(tflite.BuiltinOperator, name), version or default, inputs,
              _int8_tensor(graph, shape, name.lower().encode(), scale=scale, zero_point=zero_point),
              getattr(tflite.BuiltinOptions, options_name), options)


def _broadcast(name: str, operands: str, scale: float, zero_point: int, activation: int = 0, version=None):
    """`name` of the last convolution's output (c), its average pool (p, broadcast over H and W) or a
    constant (v: a (64,) vector; w: (1, 1, 5, 1), broadcast over H and C), in the order of `operands`."""
    def edit(model, graph):
        rng = np.random.default_rng(7)
        sources = {"c": lambda: graph.operators[CONV].outputs[0], "p": lambda: graph.operators[POOLED].outputs[0],
                   "v": lambda: _constant(model, graph, rng.integers(-128, 128, 64).astype(np.int8), 0.05, 3),
                   "w": lambda: _constant(model, graph, np.array([-100, -7, 0, 64, 127], np.int8).reshape(1, 1, 5, 1),
                                          0.02, -9)}
        inputs = [sources[o]() for o in operands]
        _end_with_binary(model, graph, POOLED, name, inputs, [1, 25, 5, 64], scale, zero_point, activation, version)
    return edit


def _concatenation(axis: int):
    """The pointwise convolution #2's output joined with itself along `axis`, as the model's output."""
    def edit(model, graph):
        source = graph.operators[2].outputs[0]
        shape = list(graph.tensors[source].shape)
        shape[axis] *= 2
        options = _schema().ConcatenationOptionsT()
        options.axis = axis - 4 if axis == 3 else axis  # a negative axis too
        _end_with(model, graph, 2, tflite.BuiltinOperator.CONCATENATION, 2, [source, source],
                  _int8_tensor(graph, shape, b"joined", graph.tensors[source].quantization),
                  tflite.BuiltinOptions.ConcatenationOptions, options)
    return edit


def _constant(model, graph, data: np.ndarray, scale: float | None = None, zero_point: int = 0, *,
              name: bytes = b"constant") -> int:
    """Index of a new constant tensor holding `data` (int32 or int8; quantized per tensor if `scale` is given)."""
    schema = _schema()
    buffer, tensor = schema.BufferT(), schema.TensorT()
    buffer.data = list(data.tobytes())
    model.buffers.append(buffer)
    tensor.shape, tensor.name, tensor.buffer = list(data.shape), name, len(model.buffers) - 1
    tensor.type = tflite.TensorType.INT8 if data.dtype == np.int8 else tflite.TensorType.INT32
    if scale is not None:
        tensor.quantization = schema.QuantizationParametersT()
        tensor.quantization.scale, tensor.quantization.zeroPoint = [scale], [zero_point]
    graph.tensors.append(tensor)
    return len(graph.tensors) - 1


def _pad(model, graph):
    """PAD of the pointwise convolution #2's output, every axis unevenly (channels too), as the output."""
    source = graph.operators[2].outputs[0]
    paddings = _constant(model, graph, np.array([[0, 0], [1, 2], [0, 1], [3, 0]], np.int32), name=b"paddings")
    _end_with(model, graph, 2, tflite.BuiltinOperator.PAD, 2, [source, paddings],
              _int8_tensor(graph, [1, 28, 6, 67], b"padded", graph.tensors[source].quantization),
              tflite.BuiltinOptions.PadOptions, _schema().PadOptionsT())


def _squeeze(model, graph):
    """KWS's RESHAPE (1, 1, 1, 64) -> (1, 64) as a SQUEEZE of axes 1 and 2."""
    op = graph.operators[10]
    op.opcodeIndex, op.inputs = _code(model, tflite.BuiltinOperator.SQUEEZE, 1), op.inputs[:1]
    op.builtinOptionsType, op.builtinOptions = tflite.BuiltinOptions.SqueezeOptions, _schema().SqueezeOptionsT()
    op.builtinOptions.squeezeDims = [1, 2]


def _requantize(model, graph):
    """QUANTIZE (int8 to int8) of the pointwise convolution #2's output to a scale of its own, as the output."""
    source = graph.operators[2].outputs[0]
    scale = graph.tensors[source].quantization.scale[0] * 0.77
    _end_with(model, graph, 2, tflite.BuiltinOperator.QUANTIZE, 2, [source],
              _int8_tensor(graph, [1, 25, 5, 64], b"requantized", scale=scale, zero_point=9))


def _logistic(model, graph):
    """LOGISTIC of the model's input (every int8 value), as the only operator."""
    _end_with(model, graph, -1, tflite.BuiltinOperator.LOGISTIC, 2, [graph.inputs[0]],
              _int8_tensor(graph, [1, 49, 10, 1], b"probability", scale=1 / 256, zero_point=-128))


def _options(name: str, **fields):
    """(BuiltinOptions code, options object) of the schema's `name` options with `fields` set."""
    options = getattr(_schema(), name + "T")()
    for field, value in fields.items():
        setattr(options, field, value)
    return getattr(tflite.BuiltinOptions, name), options


def _unary(builtin: str, scale: float, zero_point: int, out_scale: float, out_zero_point: int, options=(0, None)):
    """`builtin` of the model's input, its quantization set to `scale` and `zero_point` so that its
    int8 values span the function's interesting range, as the only operator."""
    def edit(model, graph):
        quantization = graph.tensors[graph.inputs[0]].quantization
        quantization.scale, quantization.zeroPoint = [scale], [zero_point]
        _end_with(model, graph, -1, getattr(tflite.BuiltinOperator, builtin), 2 if builtin == "TANH" else 1,
                  [graph.inputs[0]], _int8_tensor(graph, [1, 49, 10, 1], b"out", scale=out_scale,
                                                  zero_point=out_zero_point), *options)
    return edit


def _after_conv(builtin: str, version: int, shape: list[int], options, constants=(), scale=None, zero_point=None):
    """`builtin` of the last convolution's output (1, 25, 5, 64) and `constants` (int32 arrays, or
    (int8 array, scale, zero point)) into `shape`, as the output; the output keeps the input's
    quantization unless `scale` is given."""
    def edit(model, graph):
        source = graph.operators[CONV].outputs[0]
        inputs = [source] + [_constant(model, graph, *(c if isinstance(c, tuple) else (c,)), name=b"constant%d" % n)
                             for n, c in enumerate(constants)]
        out = (_int8_tensor(graph, shape, b"out", scale=scale, zero_point=zero_point) if scale is not None
               else _int8_tensor(graph, shape, b"out", graph.tensors[source].quantization))
        _end_with(model, graph, CONV, getattr(tflite.BuiltinOperator, builtin), version, inputs, out, *options)
    return edit


def _i32(*values) -> np.ndarray:
    return np.array(values, np.int32)


CONV_QUANTIZATION = (0.08023616, -128)  # the last convolution's output


def _chain(model, graph):
    """The new operators chained after the last convolution, three of their outputs the model's:
    MEAN, MUL (broadcast), SUB (a constant vector) -> output; HARD_SWISH, AVERAGE_POOL_2D (SAME,
    RELU6), PADV2, STRIDED_SLICE, TANH -> output; SOFTMAX of its rows -> DEQUANTIZE -> a float
    output; the input a float one, through a QUANTIZE."""
    def append(builtin: str, version: int, inputs: list[int], shape: list[int], quantization, options=(0, None)):
        op = _schema().OperatorT()
        op.opcodeIndex = _code(model, getattr(tflite.BuiltinOperator, builtin), version)
        op.outputs = [_int8_tensor(graph, shape, builtin.lower().encode(), scale=quantization[0],
                                   zero_point=quantization[1])]
        op.inputs, (op.builtinOptionsType, op.builtinOptions) = inputs, options
        graph.operators.append(op)
        return op.outputs[0]

    graph.operators = graph.operators[:CONV + 1]
    conv, feature = graph.operators[CONV].outputs[0], [1, 25, 5, 64]
    mean = append("MEAN", 2, [conv, _constant(model, graph, _i32(1, 2))], [1, 1, 1, 64], (0.05, -100),
                  _options("ReducerOptions", keepDims=True))
    scaled = append("MUL", 2, [conv, mean], feature, (0.2, -128), _options("MulOptions"))
    vector = _constant(model, graph, np.random.default_rng(8).integers(-128, 128, 64).astype(np.int8), 0.05, 3)
    difference = append("SUB", 2, [scaled, vector], feature, (0.15, 0), _options("SubOptions"))
    swish = append("HARD_SWISH", 1, [difference], feature, (0.1, -100), _options("HardSwishOptions"))
    pooled = append("AVERAGE_POOL_2D", 2, [swish], [1, 13, 3, 64], (0.1, -100), _options(
        "Pool2DOptions", padding=tflite.Padding.SAME, strideH=2, strideW=2, filterHeight=3, filterWidth=3,
        fusedActivationFunction=tflite.ActivationFunctionType.RELU6))
    padded = append("PADV2", 2, [pooled, _constant(model, graph, _i32([0, 0], [1, 0], [0, 1], [0, 0])),
                                 _constant(model, graph, np.array([-77], np.int8), 0.1, -100)],
                    [1, 14, 4, 64], (0.1, -100), _options("PadV2Options"))
    sliced = append("STRIDED_SLICE", 2, [padded, *(_constant(model, graph, v) for v in (
        _i32(0, 1, 0, 2), _i32(1, 14, 4, 64), _i32(1, 2, 1, 3)))], [1, 7, 4, 21], (0.1, -100),
                    _options("StridedSliceOptions"))
    tanh = append("TANH", 2, [sliced], [1, 7, 4, 21], (1 / 128, 0))
    softmax = append("SOFTMAX", 2, [tanh], [1, 7, 4, 21], (1 / 256, -128), _options("SoftmaxOptions", beta=8.0))
    graph.outputs = [difference, tanh, softmax]
    _float_edges(model, graph, output=2)


def _float_tensor(graph, shape: list[int], name: bytes) -> int:
    tensor = _schema().TensorT()
    tensor.shape, tensor.type, tensor.buffer, tensor.name = shape, tflite.TensorType.FLOAT32, 0, name
    graph.tensors.append(tensor)
    return len(graph.tensors) - 1


def _float_edges(model, graph, output: int | None = None, quantize: bool = True) -> None:
    """A float input quantized by a QUANTIZE into the int8 input, and the int8 output `output`
    dequantized into a float output by a DEQUANTIZE: the converter's float-interface model."""
    schema = _schema()
    if quantize:
        op = schema.OperatorT()
        op.opcodeIndex = _code(model, tflite.BuiltinOperator.QUANTIZE, 1)
        op.inputs = [_float_tensor(graph, list(graph.tensors[graph.inputs[0]].shape), b"float_input")]
        op.outputs = [graph.inputs[0]]
        graph.operators, graph.inputs = [op, *graph.operators], [op.inputs[0]]
    if output is not None:
        op = schema.OperatorT()
        op.opcodeIndex = _code(model, tflite.BuiltinOperator.DEQUANTIZE, 2)
        op.inputs = [graph.outputs[output]]
        op.outputs = [_float_tensor(graph, list(graph.tensors[graph.outputs[output]].shape), b"float_output")]
        graph.operators = [*graph.operators, op]
        graph.outputs = [*graph.outputs[:output], op.outputs[0], *graph.outputs[output + 1:]]


def _edge_only(quantize: bool):
    """The model reduced to its float input's QUANTIZE, or to a DEQUANTIZE of an int8 input with
    the chain's float output's quantization (scale 1/256, zero point -128)."""
    def edit(model, graph):
        graph.operators, graph.outputs = [], [graph.inputs[0]]
        if not quantize:
            graph.tensors[graph.inputs[0]].quantization.scale = [1 / 256]
            graph.tensors[graph.inputs[0]].quantization.zeroPoint = [-128]
        _float_edges(model, graph, None if quantize else 0, quantize)
    return edit

VARIANTS = {
    "chain_of_new_ops": _chain,
    "tanh": _unary("TANH", 0.03, -7, 1 / 128, 0),
    "hard_swish": _unary("HARD_SWISH", 0.05, 10, 0.025, -113, _options("HardSwishOptions")),
    "hard_swish_small_scales": _unary("HARD_SWISH", 0.004, 0, 0.003, -3, _options("HardSwishOptions")),
    "mean_keep_dims_rescaled": _after_conv("MEAN", 2, [1, 1, 1, 64], _options("ReducerOptions", keepDims=True),
                                           [_i32(1, 2)], scale=0.05, zero_point=-100),
    "mean_global": _after_conv("MEAN", 2, [1, 64], _options("ReducerOptions", keepDims=False), [_i32(2, 1)]),
    "mean_width_negative_axis": _after_conv("MEAN", 2, [1, 25, 64], _options("ReducerOptions", keepDims=False),
                                            [_i32(-2)], scale=0.03, zero_point=-90),
    "strided_slice": _after_conv("STRIDED_SLICE", 2, [1, 8, 3, 12], _options("StridedSliceOptions", beginMask=4),
                                 [_i32(0, 1, 3, 3), _i32(1, -1, 5, 60), _i32(1, 3, 2, 5)]),
    "strided_slice_shrink_end_mask": _after_conv(
        "STRIDED_SLICE", 2, [1, 5, 64], _options("StridedSliceOptions", shrinkAxisMask=2, endMask=8),
        [_i32(0, -4, 0, 0), _i32(1, 0, 5, 1), _i32(1, 1, 1, 1)]),
    "strided_slice_negative_strides": _after_conv(
        "STRIDED_SLICE", 2, [1, 13, 2, 21], _options("StridedSliceOptions", endMask=2),
        [_i32(0, -1, 4, 62), _i32(1, 0, 1, -64), _i32(1, -2, -2, -3)]),
    "strided_slice_reversed_masks_shrink": _after_conv(
        "STRIDED_SLICE", 2, [1, 25, 64], _options("StridedSliceOptions", beginMask=2 | 8, endMask=2 | 8,
                                                  shrinkAxisMask=4),
        [_i32(0, 0, -2, 0), _i32(1, 0, 0, 0), _i32(1, -1, 1, -1)]),
    "padv2": _after_conv("PADV2", 2, [1, 27, 8, 64], _options("PadV2Options"),
                         [_i32([0, 0], [2, 0], [1, 2], [0, 0]), (np.array([-77], np.int8), *CONV_QUANTIZATION)]),
    "avg_pool_3x3_s2_same": _after_conv("AVERAGE_POOL_2D", 2, [1, 13, 3, 64], _options(
        "Pool2DOptions", padding=tflite.Padding.SAME, strideH=2, strideW=2, filterHeight=3, filterWidth=3)),
    "avg_pool_2x2_same_relu6": _after_conv("AVERAGE_POOL_2D", 2, [1, 25, 5, 64], _options(
        "Pool2DOptions", padding=tflite.Padding.SAME, strideH=1, strideW=1, filterHeight=2, filterWidth=2,
        fusedActivationFunction=tflite.ActivationFunctionType.RELU6)),
    "softmax_rows": _after_conv("SOFTMAX", 2, [1, 25, 5, 64], _options("SoftmaxOptions", beta=1.0), scale=1 / 256,
                                zero_point=-128),

    "logistic": _logistic,
    "quantize_int8_to_int8": _requantize,
    "squeeze": _squeeze,
    "pad": _pad,
    "concatenation_channels": _concatenation(3),
    "concatenation_height": _concatenation(1),
    "concatenation_width": _concatenation(2),
    "add": _residual_add,
    "add_relu6": lambda m, g: _residual_add(m, g, tflite.ActivationFunctionType.RELU6),
    "add_broadcast_vector": _broadcast("ADD", "cv", 0.1, -20),
    "add_broadcast_first_relu": _broadcast("ADD", "pc", 0.09, 5, tflite.ActivationFunctionType.RELU),
    "sub_broadcast": _broadcast("SUB", "cp", 0.07, 0),
    "sub_constant_first_relu6": _broadcast("SUB", "wc", 0.05, -3, tflite.ActivationFunctionType.RELU6),
    "mul_squeeze_excite": _broadcast("MUL", "cp", 0.3, -128),
    "mul_multiplier_above_one": _broadcast("MUL", "cv", 0.003, 10, version=3),
    "max_pool": _max_pool,
    "max_pool_3x3_s2_same_relu6": lambda m, g: _max_pool(m, g, 3, tflite.ActivationFunctionType.RELU6),
    "avg_pool_relu6": _activation(POOL, tflite.ActivationFunctionType.RELU6, last=True),
    "conv_relu6": _activation(0, tflite.ActivationFunctionType.RELU6),
    "conv_relu_n1_to_1": _activation(2, tflite.ActivationFunctionType.RELU_N1_TO_1),
    "depthwise_relu6": _activation(1, tflite.ActivationFunctionType.RELU6, last=True),
    "depthwise_per_tensor": _per_tensor_depthwise,
    "fully_connected_relu": _activation(11, tflite.ActivationFunctionType.RELU),
}


@pytest.mark.parametrize("name", VARIANTS)
def test_op_variant_equals_tflm(tmp_path, name):
    path = _edited(tmp_path, name, VARIANTS[name])
    host = host_graph(import_tflite(path)[0])
    count = tflite.Model.GetRootAsModel(path.read_bytes(), 0).Subgraphs(0).OutputsLength()
    for x in _inputs((1, 49, 10, 1), 3, seed=4):
        actual, expected = host(x), _tflm(path, [x], count)
        assert len(actual) == count and all(np.array_equal(a, e) for a, e in zip(actual, expected))



def _single_rounding(acc: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    """TFLM's MultiplyByQuantizedMultiplier built with TFLITE_SINGLE_ROUNDING: one rounding, in 64 bits."""
    total = 31 - shift
    return (acc.astype(np.int64) * multiplier + (1 << (total - 1))) >> total


def _of_input(builtin: str, version: int, shape: list[int], options, constants, factor: float, zero_point: int):
    """`builtin` of the model's input (and int32 `constants`) as the only operator, into `shape`
    at `factor` times the input's scale."""
    def edit(model, graph):
        scale = float(np.float32(graph.tensors[graph.inputs[0]].quantization.scale[0]) * np.float32(factor))
        inputs = [graph.inputs[0]] + [_constant(model, graph, c, name=b"constant%d" % n) for n, c in enumerate(constants)]
        _end_with(model, graph, -1, getattr(tflite.BuiltinOperator, builtin), version, inputs,
                  _int8_tensor(graph, shape, b"out", scale=scale, zero_point=zero_point), *options)
    return edit


def test_single_rounding_requantizes_quantize_and_mean_as_tflm_single_rounding(tmp_path):
    """--rounding single: QUANTIZE (int8 to int8) and MEAN of the input (every int8 value) equal a
    numpy model of TFLM's single-rounding arithmetic; SOFTMAX is refused by name."""
    from edgeprune.compile.requantize import quantize_multiplier
    from edgeprune.compile.tflite_frontend import _mean_multiplier
    from edgeprune.compile.tflite_reader import read_tflite

    # a rescale of exactly 1/4 puts x - zero point = -2, -6, ... on negative ties, where one rounding
    # (half up) and TFLM's default two (half away from zero) part
    cases = {"requantize": _of_input("QUANTIZE", 2, [1, 49, 10, 1], (), (), 4.0, 9),
             "mean": _of_input("MEAN", 2, [1, 49, 1], _options("ReducerOptions", keepDims=False), [_i32(2)], 0.7, -5)}
    for name, edit in cases.items():
        path = _edited(tmp_path, name, edit)
        graph = read_tflite(path)
        source, out = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
        host = host_graph(import_tflite(path, "single")[0], "single")
        for x in [np.resize(np.arange(-128, 128), 490).reshape(1, 49, 10, 1).astype(np.int8), *_inputs((1, 49, 10, 1), 3, 6)]:
            q = x.astype(np.int64) - int(source.zero_point[0])
            if name == "requantize":
                multiplier, shift = (int(v) for v in quantize_multiplier(np.float64(source.scale[0])
                                                                         / np.float64(out.scale[0])))
                acc = q
            else:  # the sum over W, the count (10) folded into the multiplier
                multiplier, shift = _mean_multiplier(float(source.scale[0]), float(out.scale[0]), 10)
                acc = q.sum(axis=2)
            expected = np.clip(_single_rounding(acc, multiplier, shift) + int(out.zero_point[0]), -128, 127)
            assert np.array_equal(host(x)[0], expected.astype(np.int8).reshape(out.shape)), name
    softmax = _edited(tmp_path, "softmax", VARIANTS["softmax_rows"])
    with pytest.raises(UnsupportedOpError, match="operator #9 SOFTMAX: --rounding single is not supported"):
        import_tflite(softmax, "single")

@pytest.mark.qemu
def test_new_ops_on_m4_equal_tflm(compiled, tmp_path_factory):
    """The chain of the new operators compiled for the M4 (DSP kernels) equals TFLM on QEMU, every output."""
    model = compiled(_edited(tmp_path_factory.mktemp("chain"), "chain", _chain))
    assert [entry["shape"] for entry in model.manifest["outputs"]] == [[1, 25, 5, 64], [1, 7, 4, 21], [1, 7, 4, 21]]
    # the C API takes and returns the tensors as the file declares them: its float input and output
    assert [entry["dtype"] for entry in (*model.manifest["inputs"], *model.manifest["outputs"])] == \
        ["float32", "int8", "int8", "float32"]
    inside = model.manifest["inputs"][0]["int8"]
    assert model.manifest["inputs"][0]["bytes"] == 4 * 490 and inside["bytes"] == 490
    assert model.manifest["notes"] == [
        "float input 'float_input': the C API takes it as float32, as the file declares; its QUANTIZE (operator #0) "
        "runs in edgeprune_invoke() as TFLM computes it",
        "float output 'float_output': the C API returns it as float32, as the file declares; its DEQUANTIZE "
        "(operator #19) runs in edgeprune_invoke() as TFLM computes it"]
    header = (model.path / "src" / "edgeprune_model.h").read_text()
    assert "roundf(x[i] / EDGEPRUNE_INPUT_0_SCALE)" in header and "typedef float edgeprune_input_0_t;" in header
    assert "typedef float edgeprune_output_2_t;" in header and "typedef int8_t edgeprune_output_0_t;" in header
    scale, zero_point = np.float32(inside["scale"]), inside["zero_point"]
    ties = (np.arange(-140, 140) + np.float32(0.5)) * scale
    ties = ties[ties / scale == np.arange(-140, 140) + np.float32(0.5)]  # exact ties of QUANTIZE, and saturation
    for x in [*(scale * (q.astype(np.float32) - zero_point) for q in _inputs((1, 49, 10, 1), 2, seed=5)),
              np.resize(ties, (1, 49, 10, 1)).astype(np.float32)]:
        report = run(model, [x])
        assert report.measurement.outputs[2].dtype == np.float32
        assert report.reference_name == "TFLM" and report.exact_matches == (8000 + 2 * 588, 8000 + 2 * 588)


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("path", [KWS, AD])
def test_mlperf_tiny_model_on_m4_equals_tflm(compiled, path):
    model = compiled(path)
    spec = model.manifest["inputs"][0]
    for x in _inputs(tuple(spec["shape"]), 10, seed=2):
        report = run(model, [x])
        assert report.reference_name == "TFLM"
        equal, total = report.exact_matches
        assert equal == total, f"{path.name}: {equal}/{total} equal"


@pytest.mark.qemu
def test_run_command_reports_exact_matches_with_tflm(compiled, capsys):
    model = compiled(AD)
    assert main(["run", str(model.path)]) == 0
    printed = capsys.readouterr().out
    assert "agreement with TFLM: 640 of 640 output elements exactly equal, max |error| 0 (ok)" in printed
    # each layer is named by its TFLite operator (index and type): issue 17, item 11
    assert model.manifest["steps"][0]["source"] == "#0 FULLY_CONNECTED"
    assert all(step_label(step) in printed for step in model.manifest["steps"])


def test_float_wrappers_quantize_and_dequantize_as_tflm(compiled, tmp_path_factory, tmp_path):
    """The header's float wrappers of the float-edged chain, built for the host, equal TFLM's
    QUANTIZE (on exact ties too, where rounding half to even would differ) and DEQUANTIZE."""
    import ctypes
    import subprocess

    model = compiled(_edited(tmp_path_factory.mktemp("chain"), "chain", _chain))
    (tmp_path / "wrap.c").write_text(
        '#include "edgeprune_model.h"\n'
        "void quantize(const float *x, int8_t *q, uint32_t n) { edgeprune_input_0_from_float(x, q, n); }\n"
        "void dequantize(const int8_t *q, float *x, uint32_t n) { edgeprune_output_2_to_float(q, x, n); }\n")
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-I", str(model.path / "src"), str(tmp_path / "wrap.c"),
                    "-o", str(tmp_path / "wrap.so"), "-lm"], check=True)
    library = ctypes.CDLL(str(tmp_path / "wrap.so"))
    for function in (library.quantize, library.dequantize):
        function.argtypes, function.restype = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32], None
    scale = np.float32(model.manifest["inputs"][0]["int8"]["scale"])
    ties = (np.arange(-140, 140) + np.float32(0.5)) * scale
    ties = ties[ties / scale == np.arange(-140, 140) + np.float32(0.5)]  # exact ties after TFLM's division
    x = np.concatenate([ties, np.random.default_rng(9).normal(0, 40, 490 - ties.size)]).astype(np.float32)
    q = np.zeros(490, np.int8)
    library.quantize(x.ctypes.data, q.ctypes.data, 490)
    expected = _tflm(_edited(tmp_path, "quantize", _edge_only(True)), [x.reshape(1, 49, 10, 1)], 1)[0]
    assert np.array_equal(q, expected.reshape(-1))
    assert ties.size > 100 and np.any(np.round(ties / scale) != np.trunc(ties / scale + np.sign(ties) * 0.5))
    levels = np.arange(-128, 128).astype(np.int8)
    y = np.zeros(256, np.float32)
    library.dequantize(levels.ctypes.data, y.ctypes.data, 256)
    interpreter_input = np.resize(levels, 490).reshape(1, 49, 10, 1)
    path = _edited(tmp_path, "dequantize", _edge_only(False))
    import tflite_micro

    interpreter = tflite_micro.runtime.Interpreter.from_file(str(path))
    interpreter.set_input(interpreter_input, 0)
    interpreter.invoke()
    assert np.array_equal(y, np.array(interpreter.get_output(0)).reshape(-1)[:256])


def test_c_api_keeps_the_file_tensors(compiled):
    """Input and output exactly as the .tflite declares them: NHWC shape, int8, scale, zero point."""
    model = compiled(KWS)
    graph = tflite.Model.GetRootAsModel(KWS.read_bytes(), 0).Subgraphs(0)
    edges = ((model.manifest["inputs"][0], graph.Inputs(0)), (model.manifest["outputs"][0], graph.Outputs(0)))
    for entry, index in edges:
        tensor = graph.Tensors(index)
        assert entry["shape"] == tensor.ShapeAsNumpy().tolist() and entry["dtype"] == "int8"
        assert entry["scale"] == float(tensor.Quantization().Scale(0))
        assert entry["zero_point"] == int(tensor.Quantization().ZeroPoint(0))
    assert model.manifest["frontend"] == "tflite" and model.source.read_bytes() == KWS.read_bytes()
    assert "softmax_int8" in {step["kernel"] for step in model.manifest["steps"]}


def test_python_api_compiles_a_tflite(tmp_path):
    model = edgeprune.compile(str(AD), "mps2-an386", tmp_path / "ad")
    assert model.elf.is_file() and model.manifest["inputs"][0]["shape"] == [1, 640]


# ---- bad files: each a one-line error, nothing written ----
def _field(table, slot: int) -> int:
    """Absolute byte position of a flatbuffer table's field (its vtable slot), which must be present."""
    offset = table._tab.Offset(slot)
    assert offset, "field not stored"
    return table._tab.Pos + offset


def _patched(tmp_path: Path, edit) -> Path:
    buf = bytearray(KWS.read_bytes())
    edit(buf, tflite.Model.GetRootAsModel(bytes(buf), 0))
    path = tmp_path / "patched.tflite"
    path.write_bytes(bytes(buf))
    return path


def _softmax_code(model):
    return next(model.OperatorCodes(i) for i in range(model.OperatorCodesLength())
                if model.OperatorCodes(i).BuiltinCode() == tflite.BuiltinOperator.SOFTMAX)


def _set_builtin(buf: bytearray, model, builtin: int) -> None:
    code = _softmax_code(model)
    buf[_field(code, 4)] = builtin  # deprecated_builtin_code (int8); this file stores no builtin_code


def _set_version(buf: bytearray, model, version: int) -> None:
    code = _softmax_code(model)
    buf[_field(code, 8):_field(code, 8) + 4] = version.to_bytes(4, "little")


def _set_types(buf: bytearray, model, new: int, only_input: bool = False) -> None:
    """Retype the int8 activations (tensors without data) to `new`: all of them, or the input only."""
    graph = model.Subgraphs(0)
    indices = [graph.Inputs(0)] if only_input else range(graph.TensorsLength())
    for index in indices:
        tensor = graph.Tensors(index)
        if tensor.Type() == tflite.TensorType.INT8 and not model.Buffers(tensor.Buffer()).DataLength():
            buf[_field(tensor, 6)] = new


def _refused(path: Path, tmp_path: Path, error=EdgepruneError) -> str:
    out = tmp_path / "out"
    with pytest.raises(error) as err:
        edgeprune.compile(str(path), "mps2-an386", out)
    assert not out.exists()
    assert "\n" not in str(err.value)
    return str(err.value)


def test_unsupported_op_names_op_version_index_and_supported(tmp_path):
    message = _refused(_patched(tmp_path, lambda b, m: _set_builtin(b, m, tflite.BuiltinOperator.EXP)),
                       tmp_path, UnsupportedOpError)
    assert message.startswith("operator #12 EXP version 2 is not supported; supported operators: ")
    assert all(f"{op} v1" in message for op in SUPPORTED_OPS)


def test_unsupported_op_version_is_named(tmp_path):
    message = _refused(_patched(tmp_path, lambda b, m: _set_version(b, m, 3)), tmp_path, UnsupportedOpError)
    assert message.startswith("operator #12 SOFTMAX version 3 is not supported (versions 1-2 are)")


@pytest.mark.parametrize("edit, message", [
    (_unary("TANH", 0.03, -7, 1 / 256, 0), "operator #0 TANH: an int8 output needs scale 1/128 and zero point 0 "
                                           "(TFLM's), not 0.00390625 and 0"),
    (_unary("HARD_SWISH", 0.05, 10, 0.0001, 0, _options("HardSwishOptions")),
     "operator #0 HARD_SWISH: input scale / (128 x output scale) must be within [2**-16, 1) (its exponent is 2)"),
    (_after_conv("STRIDED_SLICE", 2, [1, 25, 5, 64], _options("StridedSliceOptions", ellipsisMask=2),
                 [_i32(0, 24, 0, 0), _i32(1, 0, 5, 64), _i32(1, -1, 1, 1)]),
     "operator #9 STRIDED_SLICE: nonzero strides (positive on shrunk axes) without ellipsis, new axes or offset "
     "are supported"),
    (_after_conv("STRIDED_SLICE", 2, [1, 25, 64], _options("StridedSliceOptions", shrinkAxisMask=4),
                 [_i32(0, 0, -2, 0), _i32(1, 25, 0, 64), _i32(1, 1, -1, 1)]),  # TFLM slices nothing here
     "operator #9 STRIDED_SLICE: nonzero strides (positive on shrunk axes) without ellipsis, new axes or offset "
     "are supported"),
])
def test_unsupported_op_parameters_are_named(tmp_path, edit, message):
    assert _refused(_edited(tmp_path, "bad", edit), tmp_path, UnsupportedOpError) == message


def test_int16_activations_are_refused(tmp_path):
    path = _patched(tmp_path, lambda b, m: _set_types(b, m, tflite.TensorType.INT16, True))
    message = _refused(path, tmp_path, UnsupportedOpError)
    assert message.startswith("int16 activations are not supported: tensor ") and "operator #0 CONV_2D" in message


def test_float_model_is_refused(tmp_path):
    path = _patched(tmp_path, lambda b, m: _set_types(b, m, tflite.TensorType.FLOAT32))
    message = _refused(path, tmp_path, UnsupportedOpError)
    assert message.startswith("patched.tflite has a float32 input or output ('input_1'); edgeprune compiles int8")


@pytest.mark.parametrize("cut", [KWS.stat().st_size // 2, 1000])
def test_truncated_file_is_refused(tmp_path, cut):
    path = tmp_path / "cut.tflite"
    path.write_bytes(KWS.read_bytes()[:cut])
    assert "truncated or corrupt TFLite file" in _refused(path, tmp_path)


def test_not_a_tflite_file_is_refused_by_the_cli(tmp_path, capsys):
    path = tmp_path / "noise.tflite"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    assert main(["compile", str(path), "-o", str(tmp_path / "out")]) == 2
    assert "is not a TFLite flatbuffer (no 'TFL3' identifier)" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_readme_op_table_is_generated_from_the_code():
    text = README.read_text()
    start, end = text.index(op_tables.TABLE_START), text.index(op_tables.TABLE_END) + len(op_tables.TABLE_END)
    assert text[start:end] == op_tables.markdown()
