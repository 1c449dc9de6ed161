"""`edgeprune quantize`: the command line face of `edgeprune.quantize.quantize`."""
from __future__ import annotations

import argparse

from edgeprune._lazy import LazyChoices
from edgeprune.quantize.defaults import DEFAULT_SAMPLES

EPILOG = """examples:
  edgeprune quantize digits_cnn --calib digits -o build/digits.int8.onnx
  edgeprune quantize model.onnx --calib data.npz --method entropy -o model.int8.onnx
  edgeprune quantize ic_resnet8 --train-epochs 0 --calib digits --eval-samples 100 -o r8.int8.onnx
  edgeprune quantize my_task.py:task -o build/mine.int8.onnx   # your model, calibration and metric

DATA is `digits` (scikit-learn digits shaped for the model input) or an .npz with arrays x
(samples) and y (integer labels): calibration uses its training split, evaluation its test split.
A task (FILE.py:NAME) brings its calibration data (default: its training samples) and its metric,
which scores the float and the int8 model (the int8 one through onnxruntime).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "quantize", help="int8 post-training quantization to a QDQ ONNX model, with a report",
        description="Quantize a model to int8 (onnxruntime static quantization, QDQ format, "
        "per-channel symmetric int8 weights, int8 activations, int32 bias); compare float and "
        "int8 top-1 accuracy and the SQNR of every quantized tensor; write the JSON report "
        "beside the model.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="a task (FILE.py:NAME or package.module:NAME), a zoo model name "
                   "or an .onnx file")
    p.add_argument("-o", "--out", required=True, help="the int8 model to write (.onnx)")
    p.add_argument("--calib", metavar="DATA", help="calibration data (required unless MODEL is a task)")
    p.add_argument("--method", choices=LazyChoices("edgeprune.quantize.settings", "METHODS"), default="minmax",
                   metavar="METHOD", help="calibration method: %(choices)s (default minmax)")
    p.add_argument("--samples", type=int, default=DEFAULT_SAMPLES,
                   help=f"calibration samples (default {DEFAULT_SAMPLES})")
    p.add_argument("--eval", metavar="DATA", help="evaluation data (default: the --calib data)")
    p.add_argument("--eval-samples", type=int, help="evaluate on this many samples only")
    p.add_argument("--train-epochs", type=int, default=30,
                   help="zoo models: train this long on the --calib data first (default 30; "
                   "0 keeps the untrained weights)")
    p.add_argument("--rows", type=int, default=20, help="SQNR rows to print (default 20)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from edgeprune.quantize.api import quantize, report_path

    report = quantize(args.model, args.calib, args.out, method=args.method, samples=args.samples,
                      evaluation=args.eval, eval_samples=args.eval_samples,
                      train_epochs=args.train_epochs)
    print(report.summary())
    print(report.table(args.rows))
    print(f"report: {report_path(args.out)}")
    return 0
