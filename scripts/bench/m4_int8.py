#!/usr/bin/env python3
"""Benchmark: int8 MLPerf Tiny architectures on the Cortex-M DSP cores against TFLite Micro + CMSIS-NN.

For KWS DS-CNN, VWW MobileNetV1-0.25, IC ResNet-8 and the AD auto-encoder (the zoo's copies of
the MLPerf Tiny architectures, quantized with digits calibration: the figures are about the
kernels, not accuracy), compiled with the DSP kernels (`--kernels auto`) and with the portable
ones, run on QEMU with -icount (instructions, not cycles). Prints per model and board:
instructions per inference, the TFLM + CMSIS-NN figure measured on the same QEMU (M4 only,
../shared/design/toolchain-facts.md) and the ratio, instructions per MAC by layer kind (pointwise,
conv, depthwise, dense), flash (weights, kernels), RAM (arena, workspace) and compile seconds;
checks that the device equals the host build bit for bit. `--optimize speed size` measures the DSP
kernels both ways (kernels column `auto/auto/size`), with the size build's instructions and kernel
bytes against the speed build's. Writes JSON.

    .venv/bin/python scripts/bench/m4_int8.py [--boards mps2-an386 ...] [--optimize speed size] [--out build/bench/m4_int8.json]
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from edgeprune._atomic import write_text_atomic
from edgeprune.compile.api import compile_model
from edgeprune.compile.host import host_outputs
from edgeprune.models import stats, zoo
from edgeprune.profile.run import run
from edgeprune.quantize import quantize

MODELS = ("kws_dscnn", "vww_mobilenet", "ic_resnet8", "ad_autoencoder")
BOARDS = ("mps2-an386", "mps2-an500", "mps2-an505", "mps3-an547")
# TFLM (90b983c) + CMSIS-NN (4ab83cc) on QEMU mps2-an386 -icount shift=0, instructions per inference.
TFLM_CMSIS_NN_M4 = {"kws_dscnn": 7_699_520, "vww_mobilenet": 24_102_320, "ic_resnet8": 29_863_160,
                    "ad_autoencoder": 583_120}
BAR = 0.7  # the acceptance bar: at most 0.7x TFLM + CMSIS-NN


def per_kind(manifest: dict, layer_instructions: list[float]) -> dict[str, dict]:
    """Instructions, MACs and instructions per MAC of each layer kind the DSP kernels name."""
    totals: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])
    for step, instructions in zip(manifest["steps"], layer_instructions):
        if "layer" in step:
            totals[step["layer"]["kind"]][0] += instructions
            totals[step["layer"]["kind"]][1] += step["layer"]["macs"]
    return {kind: {"instructions": i, "macs": m, "per_mac": i / m} for kind, (i, m) in sorted(totals.items())}


def measure(name: str, board: str, kernels: str, weights: str, optimize: str, quantized: Path, scratch: Path) -> dict:
    compiled = compile_model(quantized, board, scratch / f"{name}-{board}-{kernels}-{weights}-{optimize}",
                             kernels=kernels, weights=weights, optimize=optimize)
    x = np.random.default_rng(3).integers(-128, 128, compiled.manifest["inputs"][0]["shape"]).astype(np.int8)
    report = run(compiled, [x])
    macs = stats.count(zoo.build_model(name), zoo.input_shape(name)).macs
    elf, mem = compiled.manifest["elf"], compiled.manifest["memory"]
    return {
        "model": name, "board": board, "kernels": kernels if kernels == "portable" else f"{kernels}/{weights}" + ("/size" if optimize == "size" else ""),
        "optimize": optimize,
        "macs": macs,
        "instructions": round(report.measurement.last),
        "instructions_per_mac": report.measurement.last / macs,
        "by_kind": per_kind(compiled.manifest, report.measurement.layers),
        "flash_weights": elf["flash"]["weights"], "flash_kernels": elf["flash"]["kernels"],
        "ram_arena": elf["ram"]["arena"], "ram_workspace": mem["workspace_bytes"],
        "compile_seconds": compiled.manifest["compile_seconds"],
        "bit_exact_with_host": bool(np.array_equal(report.measurement.outputs[0], host_outputs(compiled, [x])[0])),
    }


def configurations(kernels: list[str], weights: list[str], optimize: list[str]) -> list[tuple[str, str, str]]:
    """(kernels, weights, optimize) to measure: every weight layout and optimization for the DSP kernels,
    portable once."""
    return [(k, w, o) for k in kernels for w in (weights if k == "auto" else ["auto"])
            for o in (optimize if k == "auto" else ["speed"])]


def size_against_speed(rows: list[dict]) -> list[str]:
    """Per model and board measured both ways: the size build's instructions and kernel bytes against the speed build's."""
    speed = {(r["model"], r["board"], r["kernels"]): r for r in rows if r["optimize"] == "speed"}
    lines = []
    for r in rows:
        fast = speed.get((r["model"], r["board"], r["kernels"].removesuffix("/size")))
        if r["optimize"] == "size" and fast:
            lines.append(f"{r['model']} on {r['board']}: --optimize size {r['instructions']:,} instructions "
                         f"({r['instructions'] / fast['instructions'] - 1:+.1%}), kernels {r['flash_kernels']:,} B "
                         f"({r['flash_kernels'] / fast['flash_kernels'] - 1:+.1%}) against speed "
                         f"{fast['instructions']:,} and {fast['flash_kernels']:,} B")
    return lines


def table(rows: list[dict]) -> str:
    head = (f"{'model':<15}{'board':<12}{'kernels':<20}{'instructions':>13}{'TFLM+CMSIS':>12}{'ratio':>7}"
            f"{'instr/MAC':>10}  {'pointwise':>9}{'conv':>6}{'dw':>6}{'dense':>6}"
            f"{'weights B':>10}{'kernels B':>10}{'arena B':>9}{'ws B':>6}{'compile s':>10}  exact")
    lines = [head, "-" * len(head)]
    for r in rows:
        peer = TFLM_CMSIS_NN_M4.get(r["model"]) if r["board"] == "mps2-an386" else None
        kinds = "".join(f"{r['by_kind'][k]['per_mac']:>{w}.2f}" if k in r["by_kind"] else f"{'-':>{w}}"
                        for k, w in (("pointwise", 9), ("conv", 6), ("depthwise", 6), ("dense", 6)))
        peer_text, ratio_text = (f"{peer:,}", f"{r['instructions'] / peer:.2f}") if peer else ("-", "-")
        lines.append(
            f"{r['model']:<15}{r['board']:<12}{r['kernels']:<20}{r['instructions']:>13,}"
            f"{peer_text:>12}{ratio_text:>7}"
            f"{r['instructions_per_mac']:>10.2f}  {kinds}{r['flash_weights']:>10,}{r['flash_kernels']:>10,}"
            f"{r['ram_arena']:>9,}{r['ram_workspace']:>6,}{r['compile_seconds']:>10.1f}  {r['bit_exact_with_host']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--boards", nargs="+", default=list(BOARDS), choices=BOARDS)
    parser.add_argument("--kernels", nargs="+", default=["auto", "portable"], choices=("auto", "portable"))
    parser.add_argument("--weights", nargs="+", default=["auto"], choices=("auto", "int16", "int8"),
                        help="weight layouts of the DSP kernels to measure (default: auto)")
    parser.add_argument("--optimize", nargs="+", default=["speed"], choices=("speed", "size"),
                        help="the DSP kernels' optimization to measure (default: speed; `speed size` for both)")
    parser.add_argument("--out", type=Path, default=Path("build/bench/m4_int8.json"))
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        for name in args.models:
            quantized = scratch / f"{name}.int8.onnx"
            quantize(name, "digits", quantized, train_epochs=0, samples=64, write_report=False)
            for board in args.boards:
                for kernels, weights, optimize in configurations(args.kernels, args.weights, args.optimize):
                    rows.append(measure(name, board, kernels, weights, optimize, quantized, scratch))
                    print(f"measured {name} on {board} ({kernels}, {weights}, {optimize})", file=sys.stderr, flush=True)
    print(table(rows))
    print("\n".join(size_against_speed(rows)))
    for r in rows:
        peer = TFLM_CMSIS_NN_M4.get(r["model"])
        if r["board"] == "mps2-an386" and r["kernels"] != "portable" and peer:
            ratio = r["instructions"] / peer
            print(f"{r['model']} ({r['kernels']}): {ratio:.2f}x TFLM + CMSIS-NN ({'meets' if ratio <= BAR else 'misses'} the "
                  f"{BAR}x bar; {r['instructions'] - 0.5 * peer:+,.0f} instructions from 0.5x)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out, json.dumps(rows, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
