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
from edgeprune.models.export import to_onnx
from edgeprune.models.train import Recipe
from edgeprune.quantize.errors import QuantizeError
from edgeprune.quantize.evaluate import OnnxModule, compare
from edgeprune.quantize.report import QuantizeReport, TensorSqnr
from edgeprune.quantize.source import ModelSpec, float_onnx, model_input, output_width
from edgeprune.quantize.sqnr import find_probes
from edgeprune.quantize.structure import float_nodes
from edgeprune.task import Task, metric_label
from edgeprune.taskfile import is_reference, load_task


def report_path(out: str | os.PathLike) -> Path:
    """Where the JSON report of `out` goes: `model.int8.onnx` -> `model.int8.json`."""
    return Path(out).with_suffix(".json")


def quantize(model: ModelSpec | Task, calibration: datasets.DataSpec | None = None,
             out: str | os.PathLike | None = None, *, method: str = "minmax",
             input_shape: tuple[int, ...] | None = None, samples: int = DEFAULT_SAMPLES,
             evaluation: str | os.PathLike | np.ndarray | None = None,
             eval_samples: int | None = None, train_epochs: int = 0,
             write_report: bool = True) -> QuantizeReport:
    """Quantize `model` to an int8 QDQ ONNX file at `out` (written atomically) and compare it.

    model: a Task or task reference (`FILE.py:NAME`: its model, calibration data and metric, the
    float and int8 models scored by the task), zoo name (`train_epochs` > 0 trains it on the
    calibration data set first), `.onnx` path, or torch module with `input_shape`.
    calibration: `digits`, an `.npz` with x, y (its training split) or a float32 array
    (N, *input_shape[1:]); the first `samples` are used (a task's default: its calibration set).
    evaluation: `digits`, an `.npz` (its test split) or an array of samples (default: the
    calibration data set, or digits for an array), the first `eval_samples` of it. The report
    goes to `report_path(out)`.
    """
    if out is None:
        raise QuantizeError("give the int8 model's path (out)")
    task = as_task(model)
    if task is None and calibration is None:
        raise QuantizeError("give calibration data (--calib digits or an .npz), or a task (FILE.py:NAME), "
                            "which brings its own")
    kwargs = settings.quantizer_kwargs(method)
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="edgeprune-quantize-") as tmp:
        scratch = Path(tmp)
        if task is None:
            source, label = float_onnx(model, input_shape, scratch, train_epochs, calibration)
        else:
            if not task.trained and train_epochs > 0:
                task.tune(task.model, Recipe(epochs=train_epochs))
            source, label = to_onnx(task.model, task.input_shape, scratch / "exported.onnx"), task.name
        float_model = prepare.preprocess(source, scratch / "float.onnx")
        input_name, shape = model_input(float_model)
        outputs = output_width(float_model)
        x_calibration = (task.calibration_samples() if task is not None and calibration is None
                         else datasets.calibration_samples(calibration, shape, outputs))
        reader = ArrayReader(x_calibration, input_name, samples)
        if task is not None:
            x_eval, y_eval = task.data.x_val if len(task.data.x_val) else x_calibration, None
            evaluation = ("task.evaluate" if task.evaluate else f"the validation split of task {task.name}")
        elif isinstance(evaluation, np.ndarray):
            x_eval, y_eval = evaluation, None
        else:
            if evaluation is None:
                evaluation = "digits" if isinstance(calibration, np.ndarray) else calibration
            test = datasets.load(evaluation, shape, outputs)
            x_eval, y_eval = test.x_test, test.y_test if outputs == test.num_classes else None
        x_eval = check_samples(x_eval[:eval_samples], shape, "evaluation data")
        with contextlib.redirect_stdout(io.StringIO()):  # calibrators print progress
            ranges = calibrate(scratch / "float.onnx", reader, method, scratch)
            quantize_static(scratch / "float.onnx", scratch / "int8.onnx",
                            calibration_cache_path=ranges, **kwargs)
        qdq_model = prepare.drop_unused_opsets(onnx.load(scratch / "int8.onnx"))
    probes = find_probes(float_model, qdq_model)
    result = compare(float_model, qdq_model, input_name, x_eval, probes)
    if task is not None:
        scores = [task.score(OnnxModule(m)) for m in (float_model, qdq_model)]
    elif y_eval is not None:
        y_eval = y_eval[:eval_samples]
        scores = [float(np.mean(p == y_eval)) for p in (result.float_predictions, result.int8_predictions)]
    else:
        scores = [None, None]
    report = QuantizeReport(
        model=label, output=str(out), method=method, settings=settings.describe(method),
        calibration=datasets.describe(x_calibration if calibration is None else calibration),
        calibration_samples=len(reader), evaluation=datasets.describe(evaluation),
        evaluation_samples=len(x_eval), float_accuracy=scores[0], int8_accuracy=scores[1],
        agreement=float(np.mean(result.float_predictions == result.int8_predictions)),
        float_nodes=float_nodes(qdq_model),
        tensors=sorted((TensorSqnr(p.tensor, p.kind, p.layer, result.sqnr_db[p.tensor])
                        for p in probes), key=lambda row: row.sqnr_db),
        metric=metric_label(task.metric_name) if task is not None else "top-1")
    write_bytes_atomic(out, qdq_model.SerializeToString())
    if write_report:
        write_text_atomic(report_path(out), json.dumps(report.to_dict(), indent=2) + "\n")
    return report


def as_task(model: ModelSpec | Task) -> Task | None:
    """The task `model` is or names (`FILE.py:NAME`); None for a zoo name, file or module."""
    if isinstance(model, Task):
        return model
    if isinstance(model, str) and is_reference(model):
        return load_task(model)
    return None
