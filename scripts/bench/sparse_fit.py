"""Benchmark: the instruction estimates behind `--sparse auto` (compile/dsp/sparse_dense.py), refitted.

Single int8 dense layers of several shapes, block pruned (`--pattern block4`, magnitude) to
several shares of kept blocks, are compiled for the Cortex-M4 (mps2-an386) with `--sparse off`
(the dense DSP kernel) and `--sparse on` (the block-sparse kernel) and run once on QEMU. Least
squares then fits, per row of x, dense = a * blocks + b * outputs and sparse = c * kept blocks +
d * outputs (unweighted: the large layers, where the choice matters most, weigh most); the
table gives each layer's measured instructions against the fit and the constants in use, and how
often each picks the kernel measured faster. Usage:
    .venv/bin/python scripts/bench/sparse_fit.py [--out build/bench/sparse_fit.json]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgeprune._atomic import write_text_atomic
from edgeprune.compile.api import compile_model
from edgeprune.compile.dsp import sparse_dense
from edgeprune.compile.dsp.packing import padded_length
from edgeprune.profile.run import run
from edgeprune.prune.unstructured import make_permanent, prune_weights
from edgeprune.quantize import quantize

BOARD = "mps2-an386"
SHAPES = ((640, 128), (128, 128), (512, 64), (128, 640), (8, 128), (128, 8))  # (inputs, outputs); AD's and the old fit's
KEPT = (0.1, 0.2, 0.3, 0.5, 0.7)  # share of blocks of four kept


def layer_counts(depth: int, outputs: int, kept: float, folder: Path) -> dict:
    """One dense layer pruned to `kept` of its blocks: its blocks and its instructions on QEMU, dense and sparse."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(depth, outputs)).eval()
    prune_weights(model, 1 - kept, pattern="block4")
    make_permanent(model)
    calibration = np.random.default_rng(1).normal(size=(64, depth)).astype(np.float32)
    quantized = quantize(model, calibration, folder / "m.int8.onnx", input_shape=(1, depth), write_report=False).output
    x = np.random.default_rng(2).integers(-128, 128, (1, depth)).astype(np.int8)
    row = {"inputs": depth, "outputs": outputs}
    for mode in ("off", "on"):
        compiled = compile_model(quantized, BOARD, folder / mode, sparse=mode)
        (step,) = [s for s in compiled.manifest["steps"] if "layer" in s]
        (count,) = run(compiled, [x]).measurement.layers
        row[{"off": "dense", "on": "sparse"}[mode]] = int(count)
        row["kernel_" + mode] = step["kernel"]
        if mode == "on":  # the kept blocks of the int8 weights, from their bytes (4 B a block, its index, N + 1 starts)
            per_row = padded_length(depth) // sparse_dense.BLOCK
            index_bytes = 1 if per_row <= 256 else 2
            row["blocks"] = outputs * per_row
            row["kept_blocks"] = (step["layer"]["weight_bytes"] - 4 * (outputs + 1)) // (4 + index_bytes)
    return row


def fit(rows: list[dict], kind: str) -> tuple[float, float]:
    """Least-squares (per block, per output) for `kind` "dense" (all blocks) or "sparse" (kept blocks)."""
    a = np.array([[r["blocks" if kind == "dense" else "kept_blocks"], r["outputs"]] for r in rows], float)
    b = np.array([r[kind] for r in rows], float)
    (per_block, per_output), *_ = np.linalg.lstsq(a, b, rcond=None)
    return float(per_block), float(per_output)


def estimate(row: dict, kind: str, constants: tuple[float, float]) -> float:
    return constants[0] * row["blocks" if kind == "dense" else "kept_blocks"] + constants[1] * row["outputs"]


def summarize(rows: list[dict]) -> dict:
    """Prints each layer's measured instructions against the fit and the constants in use; returns
    the fit, its relative error, and how often each set of constants picks the faster kernel."""
    fitted = {kind: fit(rows, kind) for kind in ("dense", "sparse")}
    in_use = {"dense": (sparse_dense.DENSE_PER_BLOCK, sparse_dense.DENSE_PER_OUTPUT),
              "sparse": (sparse_dense.SPARSE_PER_BLOCK, sparse_dense.SPARSE_PER_OUTPUT)}
    print(f"{'layer':<10} {'kept':>5} {'dense':>8} {'fit':>8} {'in use':>8} {'sparse':>8} {'fit':>8} {'in use':>8}")
    errors: dict[str, list[float]] = {kind: [] for kind in fitted}
    for r in rows:
        cells = []
        for kind in ("dense", "sparse"):
            est = estimate(r, kind, fitted[kind])
            errors[kind].append(est / r[kind] - 1)
            cells += [f"{r[kind]:>8,}", f"{est:>8,.0f}", f"{estimate(r, kind, in_use[kind]):>8,.0f}"]
        print(f"{r['inputs']:>4}->{r['outputs']:<5} {r['kept_blocks'] / r['blocks']:>5.0%} {' '.join(cells)}")
    summary: dict = {kind: {"per_block": round(fitted[kind][0], 2), "per_output": round(fitted[kind][1], 1),
                            "max_abs_relative_error": max(map(abs, errors[kind])),
                            "rms_relative_error": float(np.sqrt(np.mean(np.square(errors[kind]))))}
                     for kind in fitted}
    for kind in fitted:
        k = summary[kind]
        print(f"{kind}: {k['per_block']} a {'' if kind == 'dense' else 'kept '}block + {k['per_output']} an output; "
              f"error max {k['max_abs_relative_error']:.1%}, rms {k['rms_relative_error']:.1%}")
    for name, constants in (("fit", fitted), ("in_use", in_use)):
        agree = sum((estimate(r, "sparse", constants["sparse"]) <= estimate(r, "dense", constants["dense"]))
                    == (r["sparse"] <= r["dense"]) for r in rows)
        summary[f"choices_agree_{name}"] = agree
        print(f"constants {name}: the estimate picks the kernel measured faster in {agree} of {len(rows)} layers")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="build/bench/sparse_fit.json")
    args = parser.parse_args()
    started, rows = time.time(), []
    with tempfile.TemporaryDirectory(prefix="edgeprune-sparse-fit-") as tmp:
        for i, (depth, outputs) in enumerate(SHAPES):
            for j, kept in enumerate(KEPT):
                rows.append(layer_counts(depth, outputs, kept, Path(tmp) / f"{i}-{j}"))
    summary = summarize(rows)
    print(f"{time.time() - started:.0f} s; instructions of the layer per row of x (QEMU -icount, {BOARD})")
    write_text_atomic(Path(args.out), json.dumps({"board": BOARD, "fit": summary, "rows": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
