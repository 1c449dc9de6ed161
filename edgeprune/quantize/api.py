"""`edgeprune.quantize.quantize(...)`: float model + calibration data -> int8 QDQ ONNX + report."""
from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import quantize_static

from edgeprune._atomic import write_bytes_atomic, write_text_atomic
from edgeprune.quantize import datasets, prepare, settings
from edgeprune.quantize.calibration import (DEFAULT_SAMPLES, ArrayReader, calibrate,
                                            check_samples)
from edgeprune.quantize.evaluate import compare
from edgeprune.quantize.report import QuantizeReport, TensorSqnr
from edgeprune.quantize.source import ModelSpec, float_onnx, model_input, output_width
from edgeprune.quantize.sqnr import find_probes
from edgeprune.quantize.structure import float_nodes


def report_path(out: str | os.PathLike) -> Path:
    """Where the JSON report of `out` goes: `model.int8.onnx` -> `model.int8.json`."""
    return Path(out).with_suffix(".json")


def quantize(model: ModelSpec, calibration: datasets.DataSpec, out: str | os.PathLike, *,
             method: str = "minmax", input_shape: tuple[int, ...] | None = None,
             samples: int = DEFAULT_SAMPLES, evaluation: str | os.PathLike | None = None,
             eval_samples: int | None = None, train_epochs: int = 0,
             write_report: bool = True) -> QuantizeReport:
    """Quantize `model` to an int8 QDQ ONNX file at `out` (written atomically) and compare it.

    model: zoo name (`train_epochs` > 0 trains it on the calibration data set first), `.onnx`
    path, or torch module with `input_shape`. calibration: `digits`, an `.npz` with x, y (its
    training split) or a float32 array (N, *input_shape[1:]); the first `samples` are used.
    evaluation: `digits` or an `.npz` (its test split; default: the calibration data set, or
    digits for an array), the first `eval_samples` of it. The report goes to `report_path(out)`.
    """
    kwargs = settings.quantizer_kwargs(method)
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="edgeprune-quantize-") as tmp:
        scratch = Path(tmp)
        source, label = float_onnx(model, input_shape, scratch, train_epochs, calibration)
        float_model = prepare.preprocess(source, scratch / "float.onnx")
        input_name, shape = model_input(float_model)
        outputs = output_width(float_model)
        reader = ArrayReader(datasets.calibration_samples(calibration, shape, outputs),
                             input_name, samples)
        if evaluation is None:
            evaluation = "digits" if isinstance(calibration, np.ndarray) else calibration
        test = datasets.load(evaluation, shape, outputs)
        x_eval = check_samples(test.x_test[:eval_samples], shape, "evaluation data")
        with contextlib.redirect_stdout(io.StringIO()):  # calibrators print progress
            ranges = calibrate(scratch / "float.onnx", reader, method, scratch)
            quantize_static(scratch / "float.onnx", scratch / "int8.onnx",
                            calibration_cache_path=ranges, **kwargs)
        qdq_model = prepare.drop_unused_opsets(onnx.load(scratch / "int8.onnx"))
    y_eval = test.y_test[:eval_samples]
    probes = find_probes(float_model, qdq_model)
    result = compare(float_model, qdq_model, input_name, x_eval, probes)
    scored = outputs == test.num_classes
    report = QuantizeReport(
        model=label, output=str(out), method=method, settings=settings.describe(method),
        calibration=datasets.describe(calibration), calibration_samples=len(reader),
        evaluation=str(evaluation), evaluation_samples=len(x_eval),
        float_accuracy=float(np.mean(result.float_predictions == y_eval)) if scored else None,
        int8_accuracy=float(np.mean(result.int8_predictions == y_eval)) if scored else None,
        agreement=float(np.mean(result.float_predictions == result.int8_predictions)),
        float_nodes=float_nodes(qdq_model),
        tensors=sorted((TensorSqnr(p.tensor, p.kind, p.layer, result.sqnr_db[p.tensor])
                        for p in probes), key=lambda row: row.sqnr_db))
    write_bytes_atomic(out, qdq_model.SerializeToString())
    if write_report:
        write_text_atomic(report_path(out), json.dumps(report.to_dict(), indent=2) + "\n")
    return report
