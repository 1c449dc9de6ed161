"""Make a float ONNX graph ready for onnxruntime's QDQ quantizer, and tidy its output.

onnxruntime's quantizer leaves ops it has no QDQ rule for (ReduceMean) in float between a
DequantizeLinear and the next QuantizeLinear; the spatial mean that torch exports for
`AdaptiveAvgPool2d(1)` is rewritten to GlobalAveragePool, which it does quantize.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnxruntime.quantization.shape_inference import quant_pre_process


def preprocess(source: Path, target: Path) -> onnx.ModelProto:
    """onnxruntime's pre-processing (shape inference, basic optimisation), then the rewrite."""
    quant_pre_process(str(source), str(target))
    model = pool_spatial_means(onnx.load(target))
    onnx.save(model, target)
    return model


def _ranks(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    values = [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]
    return {v.name: len(v.type.tensor_type.shape.dim) for v in values
            if v.type.tensor_type.HasField("shape")}


def _reduce_axes(node: onnx.NodeProto, constants: dict[str, np.ndarray]) -> list[int] | None:
    for attribute in node.attribute:
        if attribute.name == "axes":
            return list(attribute.ints)
    if len(node.input) > 1 and node.input[1] in constants:
        return constants[node.input[1]].tolist()
    return None


def pool_spatial_means(model: onnx.ModelProto) -> onnx.ModelProto:
    """Replace ReduceMean over H and W of an NCHW tensor (keepdims=1) by GlobalAveragePool."""
    ranks = _ranks(model)
    constants = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        keepdims = next((a.i for a in node.attribute if a.name == "keepdims"), 1)
        axes = _reduce_axes(node, constants) if node.op_type == "ReduceMean" else None
        if (axes is not None and keepdims == 1 and ranks.get(node.input[0]) == 4
                and sorted(a % 4 for a in axes) == [2, 3]):
            node = helper.make_node("GlobalAveragePool", [node.input[0]], list(node.output),
                                    name=node.name)
        nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    used = {name for node in nodes for name in node.input}
    kept = [t for t in model.graph.initializer if t.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    return model


def drop_unused_opsets(model: onnx.ModelProto) -> onnx.ModelProto:
    """Remove opset imports of domains no node uses (pre-processing adds com.microsoft and more)."""
    used = {node.domain for node in model.graph.node} | {""}
    kept = [o for o in model.opset_import if o.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(kept)
    return model
