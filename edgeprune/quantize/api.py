"""`edgeprune.quantize.quantize(...)`: float model + calibration data -> int8 QDQ ONNX + report."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import onnx
from onnxruntime.quantization import quantize_static

from edgeprune._atomic import write_bytes_atomic
from edgeprune.quantize import datasets, prepare, settings
from edgeprune.quantize.calibration import DEFAULT_SAMPLES, ArrayReader
from edgeprune.quantize.source import ModelSpec, float_onnx, model_input, output_width


def quantize(model: ModelSpec, calibration: datasets.DataSpec, out: str | os.PathLike, *,
             method: str = "minmax", input_shape: tuple[int, ...] | None = None,
             samples: int = DEFAULT_SAMPLES, train_epochs: int = 0) -> Path:
    """Quantize `model` to an int8 QDQ ONNX file at `out` (written atomically); returns `out`.

    model: zoo name (`train_epochs` > 0 trains it on the calibration data set first), `.onnx`
    path, or torch module with `input_shape`. calibration: `digits`, an `.npz` (its training
    split) or a float32 array (N, *input_shape[1:]); the first `samples` samples are used.
    """
    kwargs = settings.quantizer_kwargs(method)
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="edgeprune-quantize-") as tmp:
        scratch = Path(tmp)
        source, _ = float_onnx(model, input_shape, scratch, train_epochs, calibration)
        prepared = prepare.preprocess(source, scratch / "float.onnx")
        input_name, shape = model_input(prepared)
        x = datasets.calibration_samples(calibration, shape, output_width(prepared))
        quantize_static(scratch / "float.onnx", scratch / "int8.onnx",
                        ArrayReader(x, input_name, samples), **kwargs)
        qdq = prepare.drop_unused_opsets(onnx.load(scratch / "int8.onnx"))
        write_bytes_atomic(out, qdq.SerializeToString())
    return out
