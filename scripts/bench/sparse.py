"""Benchmark: block-sparse int8 dense layers on the Cortex-M4 (mps2-an386, QEMU) against dense storage.

Each model is trained, then per sparsity pruned in blocks of four along the reduction
(`--pattern block4`, magnitude, layer scope) with the masks in force while it finetunes, and
once with 2:4 (`--pattern 2:4`). Each pruned model is quantized to int8 and compiled with
`--sparse off` (dense storage) and `--sparse auto` (2:4: also `on`, forced), then run on QEMU.
The table gives weight flash, total flash and instructions per inference, the float and int8
metric (AD: ROC-AUC on its validation split; digits CNN: top-1), and checks that every build's
outputs equal the dense build's bit for bit. Usage:
    .venv/bin/python scripts/bench/sparse.py [--models ad_autoencoder digits_cnn] [--out PATH]
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from edgeprune._atomic import write_text_atomic
from edgeprune.compile.api import compile_model
from edgeprune.models.train import Recipe
from edgeprune.profile.run import run
from edgeprune.prune.unstructured import make_permanent, prune_weights, sparsity_report
from edgeprune.quantize import quantize
from edgeprune.task import zoo_task

BOARD = "mps2-an386"
SPARSITIES = (0.0, 0.5, 0.7, 0.8, 0.9)
PLANS = {  # model: (training epochs, finetune epochs, first-layer cap)
    "ad_autoencoder": (10, 3, None),
    "digits_cnn": (30, 5, 0.5),
}


def pruned(task, base, pattern: str, sparsity: float, finetune: int, cap: float | None):
    """A copy of `base` with `sparsity` of its weights zeroed in `pattern`, finetuned with the masks in force."""
    model = copy.deepcopy(base)
    if pattern == "2:4" or sparsity:
        prune_weights(model, sparsity, pattern=pattern, first_layer_cap=cap if pattern == "block4" else None)
        task.tune(model, Recipe(epochs=finetune, lr=3e-3))
        make_permanent(model)
    return model.eval()


def measure(task, model, pattern: str, sparsity: float, folder: Path) -> list[dict]:
    """Rows for one pruned model: one per --sparse mode, each run once on QEMU."""
    report = quantize(dataclasses.replace(task, model=model, trained=True), out=folder / "m.int8.onnx",
                      write_report=False)
    x = np.random.default_rng(0).integers(-128, 128, task.input_shape).astype(np.int8)
    rows, dense_out = [], None
    for mode in ("off", "auto", "on") if pattern == "2:4" else ("off", "auto"):
        compiled = compile_model(report.output, BOARD, folder / mode, sparse=mode)
        device = run(compiled, [x]).measurement
        dense_out = device.outputs[0] if dense_out is None else dense_out
        m = compiled.manifest
        rows.append({
            "model": task.name, "pattern": pattern, "sparsity": sparsity, "sparse": mode,
            "weight_sparsity": sparsity_report(model).sparsity,
            "float_metric": report.float_accuracy, "int8_metric": report.int8_accuracy,
            "sparse_layers": m["sparse"]["sparse_layers"], "dense_layers": len(m["sparse"]["layers"]),
            "saved_bytes": m["sparse"]["saved_bytes"], "weight_flash": m["elf"]["flash"]["weights"],
            "flash": m["elf"]["flash_total"], "instructions": int(device.last),
            "equal_to_dense_build": bool(np.array_equal(device.outputs[0], dense_out)),
            "choices": [layer["choice"] for layer in m["sparse"]["layers"]]})
        print_row(rows[-1])
    return rows


def print_row(row: dict) -> None:
    metric = "-" if row["int8_metric"] is None else f"{row['int8_metric']:.4f}"
    print(f"{row['model']:<15} {row['pattern']:<7} {row['sparsity']:>5.0%} {row['sparse']:<5} "
          f"{row['sparse_layers']:>2}/{row['dense_layers']:<2} {row['weight_flash']:>9,} {row['flash']:>9,} "
          f"{row['instructions']:>11,} {row['float_metric']:>7.4f} {metric:>7} "
          f"{'yes' if row['equal_to_dense_build'] else 'NO':>6}", flush=True)


def bench_model(name: str, sparsities: tuple[float, ...], folder: Path) -> list[dict]:
    epochs, finetune, cap = PLANS[name]
    task = zoo_task(name)
    base = task.tune(task.model, Recipe(epochs=epochs))
    rows = []
    plans = [("block4", s) for s in sparsities] + [("2:4", 0.5)]
    for i, (pattern, sparsity) in enumerate(plans):
        model = pruned(task, base, pattern, sparsity, finetune, cap)
        rows += measure(task, model, pattern, sparsity, folder / f"{name}-{i}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=sorted(PLANS), default=sorted(PLANS))
    parser.add_argument("--sparsities", nargs="+", type=float, default=SPARSITIES)
    parser.add_argument("--out", default="build/bench/sparse.json")
    args = parser.parse_args()
    print(f"{'model':<15} {'pattern':<7} {'spars':>5} {'mode':<5} {'sp/fc':>5} {'wt flash':>9} {'flash':>9} "
          f"{'instr':>11} {'float':>7} {'int8':>7} {'=dense':>6}")
    started = time.time()
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgeprune-sparse-") as tmp:
        for name in args.models:
            rows += bench_model(name, tuple(args.sparsities), Path(tmp))
    print(f"{time.time() - started:.0f} s; metric: AD ROC-AUC, digits top-1 (validation split); "
          "sp/fc: dense layers stored block-sparse / dense layers")
    write_text_atomic(Path(args.out), json.dumps({"board": BOARD, "rows": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
