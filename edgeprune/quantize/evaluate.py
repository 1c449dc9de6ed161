"""Run the float and the QDQ model with onnxruntime: accuracy, agreement and per-tensor SQNR."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
import torch
from torch import nn

from edgeprune.quantize.sqnr import Probe, SqnrMeter, dequantized_parameters
from edgeprune.reference import ort_session


@dataclass(frozen=True)
class Comparison:
    """Predictions of both models on the evaluation samples and SQNR (dB) per probed tensor."""

    float_predictions: np.ndarray
    int8_predictions: np.ndarray
    sqnr_db: dict[str, float]


class OnnxModule(nn.Module):
    """An ONNX model with a batch-1 input as a torch module, for a task's evaluate: each sample of
    a batch runs through onnxruntime (the int8 model runs with integer kernels)."""

    def __init__(self, model: onnx.ModelProto) -> None:
        super().__init__()
        self.session = ort_session(model, as_written=False)
        self.input_name = self.session.get_inputs()[0].name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        samples = x.detach().cpu().numpy().astype(np.float32)
        return torch.from_numpy(np.concatenate(
            [self.session.run(None, {self.input_name: sample[None]})[0] for sample in samples]))


def with_outputs(model: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    """A copy of `model` that also returns tensors `names` (untyped outputs; ORT infers them)."""
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    present = {o.name for o in exposed.graph.output}
    exposed.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names if n not in present)
    return exposed


def compare(float_model: onnx.ModelProto, qdq_model: onnx.ModelProto, input_name: str,
            x: np.ndarray, probes: list[Probe]) -> Comparison:
    """Run both models on each sample of `x` (batch 1).

    Predictions come from the models as written (onnxruntime runs QDQ with integer kernels);
    SQNR from copies exposing the probed tensors (which keeps the QDQ graph unfused).
    """
    params = dequantized_parameters(qdq_model)
    initializers = {t.name: onnx.numpy_helper.to_array(t) for t in float_model.graph.initializer}
    meter = SqnrMeter()
    for probe in probes:
        if probe.dequantized in params:
            meter.add(probe.tensor, initializers[probe.tensor], params[probe.dequantized])
    activations = [p for p in probes if p.dequantized not in params]
    float_names = [p.tensor for p in activations]
    int8_names = [p.dequantized for p in activations]
    plain_float = ort_session(float_model, as_written=False)
    plain_int8 = ort_session(qdq_model, as_written=False)
    probe_float = ort_session(with_outputs(float_model, float_names), as_written=False)
    probe_int8 = ort_session(with_outputs(qdq_model, int8_names), as_written=False)
    float_top, int8_top = [], []
    for sample in x:
        feed = {input_name: sample[None]}
        float_top.append(int(np.argmax(plain_float.run(None, feed)[0])))
        int8_top.append(int(np.argmax(plain_int8.run(None, feed)[0])))
        references = probe_float.run(float_names, feed)
        quantized = probe_int8.run(int8_names, feed)
        for probe, reference, value in zip(activations, references, quantized):
            meter.add(probe.tensor, reference, value)
    return Comparison(np.array(float_top), np.array(int8_top),
                      {p.tensor: meter.db(p.tensor) for p in probes})
