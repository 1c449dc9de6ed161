"""Per-tensor signal-to-quantization-noise ratio: float tensors vs the QDQ model's dequantized ones.

Activations are matched by tensor name (the float tensor is the QuantizeLinear input, or the
DequantizeLinear output where onnxruntime renamed the graph output); weights and biases by the
consuming node's name and input position. Noise accumulates: an activation's SQNR includes the
error of every quantized tensor before it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper


@dataclass(frozen=True)
class Probe:
    """One quantized tensor: float name, the QDQ model's dequantized tensor, kind and layer."""

    tensor: str
    dequantized: str
    kind: str  # "activation", "weight" or "bias"
    layer: str  # "<op> <node>" computing (activation, in the QDQ graph) or consuming (parameter) it


def sqnr_db(signal_power: float, noise_power: float) -> float:
    """10 log10(signal / noise); +inf without noise."""
    if noise_power == 0.0:
        return math.inf
    if signal_power == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal_power / noise_power)


def _label(node: onnx.NodeProto) -> str:
    return f"{node.op_type} {node.name}"


def find_probes(float_model: onnx.ModelProto, qdq_model: onnx.ModelProto) -> list[Probe]:
    """Every DequantizeLinear of `qdq_model` paired with the `float_model` tensor it stands for."""
    float_values = ({out for node in float_model.graph.node for out in node.output}
                    | {i.name for i in float_model.graph.input})
    float_nodes = {node.name: node for node in float_model.graph.node}
    float_params = {t.name for t in float_model.graph.initializer}
    q_producers = {out: node for node in qdq_model.graph.node for out in node.output}
    q_inits = {t.name: t for t in qdq_model.graph.initializer}
    consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node in qdq_model.graph.node:
        for index, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node, index))
    probes = []
    for dq in (n for n in qdq_model.graph.node if n.op_type == "DequantizeLinear"):
        source = dq.input[0]
        if source in q_inits:  # a parameter: find it through the node that consumes it
            for node, index in consumers.get(dq.output[0], []):
                original = float_nodes.get(node.name)
                if (original is not None and index < len(original.input)
                        and original.input[index] in float_params):
                    kind = ("bias" if q_inits[source].data_type == onnx.TensorProto.INT32
                            else "weight")
                    probes.append(Probe(original.input[index], dq.output[0], kind, _label(node)))
                    break
            continue
        quantize_node = q_producers.get(source)
        if quantize_node is None:
            continue
        quantized = quantize_node.input[0]
        name = next((c for c in (quantized, dq.output[0]) if c in float_values), None)
        if name is None or any(p.tensor == name for p in probes):
            continue
        producer = q_producers.get(quantized)
        probes.append(Probe(name, dq.output[0], "activation",
                            _label(producer) if producer else "graph input"))
    return probes


def dequantized_parameters(qdq_model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """DequantizeLinear output name -> float value, for DequantizeLinear nodes of initializers."""
    inits = {t.name: numpy_helper.to_array(t) for t in qdq_model.graph.initializer}
    values = {}
    for node in qdq_model.graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in inits:
            continue
        q = inits[node.input[0]].astype(np.float64)
        scale = inits[node.input[1]].astype(np.float64)
        zero = inits[node.input[2]].astype(np.float64) if len(node.input) > 2 else 0.0
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        if np.ndim(scale) == 1:
            shape = [1] * q.ndim
            shape[axis] = -1
            scale, zero = scale.reshape(shape), np.reshape(zero, shape) if np.ndim(zero) else zero
        values[node.output[0]] = (q - zero) * scale
    return values


class SqnrMeter:
    """Accumulates signal and noise power per tensor over many samples."""

    def __init__(self) -> None:
        self.signal: dict[str, float] = {}
        self.noise: dict[str, float] = {}

    def add(self, name: str, reference: np.ndarray, quantized: np.ndarray) -> None:
        reference = np.asarray(reference, np.float64)
        error = reference - np.asarray(quantized, np.float64)
        self.signal[name] = self.signal.get(name, 0.0) + float(np.sum(reference ** 2))
        self.noise[name] = self.noise.get(name, 0.0) + float(np.sum(error ** 2))

    def db(self, name: str) -> float:
        return sqnr_db(self.signal[name], self.noise[name])
