"""The reference for a model compiled from a `.tflite`: TFLite Micro's own interpreter (the
`tflite-micro` package runs TFLM's reference kernels on the host, with its default rounding)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def tflm_outputs(path: str | Path, inputs: list[np.ndarray], outputs: int) -> list[np.ndarray]:
    """The first `outputs` outputs of the `.tflite` at `path` for `inputs`, as TFLM computes them."""
    import tflite_micro

    interpreter = tflite_micro.runtime.Interpreter.from_file(str(path))
    for index, x in enumerate(inputs):
        interpreter.set_input(np.ascontiguousarray(x), index)
    interpreter.invoke()
    return [np.array(interpreter.get_output(index)) for index in range(outputs)]
