"""What a device's outputs are checked against, and how far apart they are.

onnxruntime runs an ONNX graph; TFLite Micro's own interpreter (the `tflite-micro` package, TFLM's
reference kernels with its default rounding) runs a `.tflite`. Neither needs any stage's code: a
`.tflite`'s int8 edges come in as (scale, zero point) pairs."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import onnx

Edge = tuple[float, int]  # an int8 edge's (scale, zero point)


def ort_session(model: Path | onnx.ModelProto, *, as_written: bool = True):
    """A single-provider CPU onnxruntime session.

    `as_written` (the reference): graph optimisations off, so QDQ graphs run as written (dequantize,
    float op, quantize), on one thread, so the sums repeat exactly; onnxruntime's fused int8 kernels
    overflow on x86 CPUs without VNNI. Otherwise (an int8 model's accuracy with onnxruntime's
    integer kernels): optimised, in its precise x64 int8 mode, since without VNNI the default
    kernels saturate 16-bit intermediate sums (logits off by several units on the digits CNN)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if as_written:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.intra_op_num_threads = 1
    else:
        options.add_session_config_entry("session.x64quantprecision", "1")
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def reference_outputs(model: Path | onnx.ModelProto, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """onnxruntime's outputs of `model` run as written (`ort_session`)."""
    session = ort_session(model)
    feeds = {spec.name: x for spec, x in zip(session.get_inputs(), inputs)}
    return session.run(None, feeds)


def tflm_outputs(path: str | Path, inputs: list[np.ndarray], input_edges: Sequence[Edge],
                 output_edges: Sequence[Edge], declared: bool = False) -> list[np.ndarray]:
    """The first len(output_edges) outputs of the `.tflite` at `path` for `inputs`, as TFLM
    computes them. Where the file has float edges, an int8 input goes in dequantized (TFLM's
    QUANTIZE gives it back exactly), and a float output comes back quantized (exactly the int8
    that TFLM's DEQUANTIZE read: the integer graph's), unless `declared` (as the file declares
    it: the C API's)."""
    import tflite_micro

    interpreter = tflite_micro.runtime.Interpreter.from_file(str(path))
    for index, (x, (scale, zero_point)) in enumerate(zip(inputs, input_edges)):
        if interpreter.get_input_details(index)["dtype"] == np.float32 and x.dtype == np.int8:
            x = np.float32(scale) * (x.astype(np.float32) - np.float32(zero_point))
        interpreter.set_input(np.ascontiguousarray(x), index)
    interpreter.invoke()
    results = [np.array(interpreter.get_output(index)) for index in range(len(output_edges))]
    return [np.round(y / np.float32(scale) + zero_point).astype(np.int8) if y.dtype == np.float32 and not declared
            else y for y, (scale, zero_point) in zip(results, output_edges)]


def output_errors(outputs: list[np.ndarray], reference: list[np.ndarray]) -> Iterator[tuple[float, float]]:
    """(largest |difference|, output's largest |value|) for each output tensor."""
    for device, ref in zip(outputs, reference):
        ref64 = ref.astype(np.float64)
        yield float(np.abs(device.astype(np.float64) - ref64).max(initial=0.0)), float(np.abs(ref64).max(initial=0.0))


def per_output_lines(outputs: list[np.ndarray], reference: list[np.ndarray], indent: str = "  ") -> list[str]:
    """One line per output of a multi-output model (none for one output): its shape, largest
    |error| and that error relative to the output's scale."""
    if len(reference) < 2:
        return []
    return [f"{indent}output {i} {'x'.join(str(d) for d in ref.shape)}: max |error| {error:.3g}, relative "
            f"{error / max(scale, 1e-30):.3g}"
            for i, (ref, (error, scale)) in enumerate(zip(reference, output_errors(outputs, reference)))]


def max_abs_error(outputs: list[np.ndarray], reference: list[np.ndarray]) -> float:
    """Largest absolute difference between device outputs and the reference."""
    return max(error for error, _ in output_errors(outputs, reference))


def relative_error(outputs: list[np.ndarray], reference: list[np.ndarray]) -> float:
    """Largest difference relative to each output's scale (its largest magnitude)."""
    return max(error / max(scale, 1e-30) for error, scale in output_errors(outputs, reference))
