"""What names an artefact the stages pass on: a model file's content hash (the compile stage writes
it into the firmware's model descriptor, the results store keys records by it), and a graph's
architecture hash (its layers' shapes, not their weights: what a measurement of latency is shared by)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import onnx
from onnx import numpy_helper


def content_hash(path: Path) -> str:
    """SHA-256 of a model file's bytes: the key that names a model in the store."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _tensor(tensor: onnx.TensorProto) -> list:
    """A tensor's type and shape; its values only when int64 (shapes, axes: structure, not weights)."""
    values = numpy_helper.to_array(tensor).tolist() if tensor.data_type == onnx.TensorProto.INT64 else None
    return [tensor.data_type, list(tensor.dims), values]


def _attribute(attribute: onnx.AttributeProto):
    if attribute.type == onnx.AttributeProto.TENSOR:
        return _tensor(attribute.t)
    if attribute.type == onnx.AttributeProto.GRAPH:
        return _graph(attribute.g)
    return onnx.helper.get_attribute_value(attribute)


def _value(info: onnx.ValueInfoProto) -> list:
    tensor = info.type.tensor_type
    return [info.name, tensor.elem_type, [d.dim_value or d.dim_param for d in tensor.shape.dim]]


def _graph(graph: onnx.GraphProto) -> dict:
    return {"inputs": [_value(i) for i in graph.input], "outputs": [_value(o) for o in graph.output],
            "initializers": [[t.name, *_tensor(t)] for t in graph.initializer],
            "nodes": [[n.domain, n.op_type, list(n.input), list(n.output),
                       sorted([a.name, _attribute(a)] for a in n.attribute)] for n in graph.node]}


def architecture_hash(model: onnx.ModelProto) -> str:
    """SHA-256 of an ONNX graph's structure: operators, attributes, connections, and every tensor's
    type and shape, but not the weights' (or scales') values: two graphs with this hash have the same
    layers. A search reuses a latency measured on such a graph, by profile or by search."""
    structure = {"opsets": sorted([o.domain, o.version] for o in model.opset_import), "graph": _graph(model.graph)}
    return hashlib.sha256(json.dumps(structure, sort_keys=True, default=str).encode()).hexdigest()
