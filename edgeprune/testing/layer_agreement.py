"""Layer by layer, the int8 lowering against onnxruntime.

Every activation QuantizeLinear of a QDQ model closes a layer: the region that computes it from
int8 tensors (earlier layers' outputs) and constants. Each region is cut out with onnx's
Extractor, lowered to integer kernels and run on the host, fed onnxruntime's own values of its
int8 inputs, so that a difference is the layer's own and not one carried from an earlier layer.
The regions share nothing, so one host build holds them all, side by side (`_side_by_side`)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
import onnx.compose
from onnx.utils import Extractor

from edgeprune.compile.host import host_build

_QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
TIE_TOLERANCE = 1 / 16  # output LSBs: how close to a half-integer a value must be to round either way


@dataclass(frozen=True)
class Layer:
    """The int8 tensor a QuantizeLinear writes, the ops of its region and the int8 tensors it reads;
    `real` is the float tensor it quantizes, with `scale` and `zero_point`."""

    output: str
    ops: tuple[str, ...]
    inputs: tuple[str, ...]
    real: str
    scale: float
    zero_point: int


@dataclass(frozen=True)
class LayerAgreement:
    """`differ` elements are not equal to onnxruntime's; `ties` of them are within TIE_TOLERANCE of a
    half-integer before rounding, where TFLM's rounding (half away from zero, in two steps) and
    onnxruntime's (half to even, in float32) legitimately part."""

    layer: Layer
    elements: int
    differ: int
    ties: int
    max_abs_diff: int

    @property
    def exact_fraction(self) -> float:
        return 1.0 - self.differ / self.elements


def integer_layers(model: onnx.ModelProto) -> list[Layer]:
    """The layers of a QDQ model in graph order; the float input's QuantizeLinear is not one."""
    producer = {out: node for node in model.graph.node for out in node.output}
    constants = {init.name: onnx.numpy_helper.to_array(init) for init in model.graph.initializer}
    quantized = {node.output[0] for node in model.graph.node if node.op_type == "QuantizeLinear"}
    graph_inputs = {i.name for i in model.graph.input}
    layers = []
    for node in model.graph.node:
        if node.op_type != "QuantizeLinear" or node.input[0] in graph_inputs:
            continue
        inputs, ops, pending, seen = [], [], [node.input[0]], set()
        while pending:
            tensor = pending.pop()
            if tensor in seen or not tensor or tensor in constants:
                continue
            seen.add(tensor)
            if tensor in quantized:
                inputs.append(tensor)
                continue
            source = producer[tensor]
            if source.op_type not in _QDQ_OPS:
                ops.append(source.op_type)
            pending.extend(source.input)
        scale, zero_point = (constants[name].reshape(-1)[0] for name in node.input[1:3])
        layers.append(Layer(node.output[0], tuple(reversed(ops)), tuple(sorted(inputs)), node.input[0],
                            float(scale), int(zero_point)))
    return layers


def _onnxruntime_values(model: onnx.ModelProto, names: list[str], x: np.ndarray) -> dict[str, np.ndarray]:
    from edgeprune.quantize.evaluate import with_outputs
    from edgeprune.reference import reference_outputs

    exposed = with_outputs(model, names)
    values = reference_outputs(exposed, [x])
    return dict(zip((o.name for o in exposed.graph.output), values))


def layer_agreement(model: onnx.ModelProto, samples: list[np.ndarray], rounding: str = "double") -> list[LayerAgreement]:
    """Each layer of a QDQ model (float input), lowered by edgeprune with TFLM's `rounding` and fed
    onnxruntime's values of its inputs, against onnxruntime's value of its output, over all `samples`."""
    model = onnx.shape_inference.infer_shapes(model)
    layers = integer_layers(model)
    exposed = sorted({name for layer in layers for name in (layer.output, layer.real, *layer.inputs)})
    reference = [_onnxruntime_values(model, exposed, x) for x in samples]
    extractor = Extractor(model)
    run = host_build(_side_by_side([extractor.extract_model(list(layer.inputs), [layer.output]) for layer in layers]),
                     rounding)
    computed = [run(*(values[name] for layer in layers for name in layer.inputs)) for values in reference]
    return [_compare(layer, [outputs[index] for outputs in computed], reference) for index, layer in enumerate(layers)]


def _side_by_side(regions: list[onnx.ModelProto]) -> onnx.ModelProto:
    """One model of disjoint regions, each region's names prefixed with its index: its inputs and
    outputs are the regions' in order."""
    prefixed = [onnx.compose.add_prefix(region, f"region{index}/") for index, region in enumerate(regions)]
    graphs = [region.graph for region in prefixed]
    graph = onnx.helper.make_graph([n for g in graphs for n in g.node], "regions", [i for g in graphs for i in g.input],
                                   [o for g in graphs for o in g.output], [t for g in graphs for t in g.initializer],
                                   value_info=[v for g in graphs for v in g.value_info])
    return onnx.helper.make_model(graph, opset_imports=regions[0].opset_import, ir_version=regions[0].ir_version)


def _compare(layer: Layer, computed: list[np.ndarray], reference: list[dict[str, np.ndarray]]) -> LayerAgreement:
    """The layer's host outputs (one per sample) against onnxruntime's."""
    diffs, ties = [], []
    for output, values in zip(computed, reference, strict=True):
        diff = (output.astype(np.int32) - values[layer.output].astype(np.int32)).reshape(-1)
        real = values[layer.real].astype(np.float64).reshape(-1) / layer.scale + layer.zero_point
        near_tie = np.abs(np.abs(real - np.floor(real)) - 0.5) < TIE_TOLERANCE
        diffs.append(diff)
        ties.append((diff != 0) & near_tie)
    diff = np.concatenate(diffs)
    return LayerAgreement(layer, diff.size, int((diff != 0).sum()), int(np.concatenate(ties).sum()),
                          int(np.abs(diff).max()))
