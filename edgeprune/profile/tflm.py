"""The reference for a model compiled from a `.tflite`: TFLite Micro's own interpreter (the
`tflite-micro` package runs TFLM's reference kernels on the host, with its default rounding)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def tflm_outputs(path: str | Path, inputs: list[np.ndarray], outputs: int, declared: bool = False) -> list[np.ndarray]:
    """The first `outputs` outputs of the `.tflite` at `path` for `inputs`, as TFLM computes them.
    Where the file has float edges, an int8 input goes in dequantized (TFLM's QUANTIZE gives it
    back exactly), and a float output comes back quantized (exactly the int8 that TFLM's
    DEQUANTIZE read: the integer graph's), unless `declared` (as the file declares it: the C API's)."""
    import tflite_micro

    from edgeprune.compile.tflite_frontend import model_edges

    input_edges, output_edges = model_edges(path)
    interpreter = tflite_micro.runtime.Interpreter.from_file(str(path))
    for index, (x, edge) in enumerate(zip(inputs, input_edges)):
        if interpreter.get_input_details(index)["dtype"] == np.float32 and x.dtype == np.int8:
            x = np.float32(edge.scale) * (x.astype(np.float32) - np.float32(edge.zero_point))
        interpreter.set_input(np.ascontiguousarray(x), index)
    interpreter.invoke()
    results = [np.array(interpreter.get_output(index)) for index in range(outputs)]
    return [np.round(y / np.float32(edge.scale) + edge.zero_point).astype(np.int8) if y.dtype == np.float32 and not declared
            else y for y, edge in zip(results, output_edges)]
