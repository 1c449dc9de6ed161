#!/usr/bin/env python3
"""Benchmark: the zoo models, fp32 and int8, compiled for Cortex-M4 / M7 / M55, measured on QEMU.

int8 models come from onnxruntime's static quantizer (QDQ, digits calibration, untrained weights:
the figures are about the kernels, not accuracy). Prints, per model, precision and board: MACs, instructions per inference (QEMU -icount: instructions, not
cycles), instructions per MAC, flash (weights / code), RAM (arena / workspace / stack used),
planned arena vs liveness bound, peak RAM (arena + input/output and workspace beside it +
measured stack) and, for the int8 MLPerf Tiny models, TFLM's arena (which holds input and output)
beside it, compile seconds, and agreement with onnxruntime; writes JSON.

    .venv/bin/python scripts/bench/compile_zoo.py [--precisions fp32 int8] [--out build/bench/compile_zoo.json]
    .venv/bin/python scripts/bench/compile_zoo.py --precisions int8 --boards mps2-an386   # peak RAM vs TFLM
    .venv/bin/python scripts/bench/compile_zoo.py --precisions int8 --boards mps2-an386 \
        --models vww_mobilenet ic_resnet8 --patch-grids 2x2 3x3 4x4   # + patch-based rows

With --patch-grids each int8 model is built again with its first stage in patches (`--patch-grid`);
those rows give the instructions the halos add against the build without patches, and whether the
outputs are bit-exact with it (same seeded inputs).
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
from pathlib import Path

from edgeprune._atomic import write_text_atomic
from edgeprune.compile.api import compile_model
from edgeprune.models import stats, zoo
from edgeprune.profile.run import run
from edgeprune.quantize import quantize

BOARDS = ("mps2-an386", "mps2-an500", "mps3-an547")
# Published MLPerf Tiny v1.0 closed-division latency on NUCLEO-L4R5ZI (Cortex-M4F, 120 MHz), ms,
# for context only (int8, real silicon cycles; ours is fp32 instructions on QEMU).
PUBLISHED_M4_MS = {"kws_dscnn": {"X-CUBE-AI": 43.2, "TFLM+CMSIS-NN": 181.9},
                   "vww_mobilenet": {"X-CUBE-AI": 88.9, "TFLM+CMSIS-NN": 600.6},
                   "ic_resnet8": {"X-CUBE-AI": 165.1, "TFLM+CMSIS-NN": 704.2},
                   "ad_autoencoder": {"X-CUBE-AI": 4.79, "TFLM+CMSIS-NN": 10.05}}
# TFLM's arena (bytes its recording allocator used, input and output included) for the MLPerf Tiny
# int8 reference models, TFLM 90b983c + CMSIS-NN on QEMU mps2-an386 (../shared/design/toolchain-facts.md).
TFLM_ARENA_BYTES = {"kws_dscnn": 22_820, "vww_mobilenet": 100_708, "ic_resnet8": 54_996, "ad_autoencoder": 2_580}
RAM_BAR = 0.8  # issue 20's acceptance: peak RAM at most 0.8x TFLM's arena


def model_file(name: str, precision: str, scratch: Path) -> str | Path:
    """The zoo name for fp32; an int8 QDQ file (quantized once) for int8."""
    if precision == "fp32":
        return name
    path = scratch / f"{name}.int8.onnx"
    if not path.exists():
        quantize(name, "digits", path, train_epochs=0, samples=64, write_report=False)
    return path


def measure(name: str, precision: str, board: str, scratch: Path, patch_grid: str | None = None) -> dict:
    compiled = compile_model(model_file(name, precision, scratch), board,
                             scratch / f"{name}-{precision}-{board}-{patch_grid}", patch_grid=patch_grid)
    report = run(compiled)
    macs = stats.count(zoo.build_model(name), zoo.input_shape(name)).macs
    elf, mem = compiled.manifest["elf"], compiled.manifest["memory"]
    code = sum(elf["flash"][k] for k in ("kernels", "runtime", "libc", "unattributed", "other"))
    return {
        "model": name, "precision": precision, "board": board, "macs": macs, "patch_grid": patch_grid,
        "patches": compiled.manifest["patches"] and {k: v for k, v in compiled.manifest["patches"].items() if k != "steps"},
        "outputs": [o.tolist() for o in report.measurement.outputs],
        "instructions": round(report.measurement.last),
        "instructions_per_mac": report.measurement.last / macs,
        "flash_weights": elf["flash"]["weights"], "flash_code": code, "flash_total": elf["flash_total"],
        "ram_arena": elf["ram"]["arena"], "ram_workspace": mem["workspace_bytes"],
        "ram_stack_used": report.measurement.stack_bytes, "ram_total": elf["ram_total"],
        "arena_planned": mem["arena_bytes"], "arena_liveness_bound": mem["liveness_bound_bytes"],
        "io_outside_arena": mem["io_outside_arena_bytes"], "arena_saved": mem["saved_bytes"],
        "inplace_layers": len(mem["inplace_steps"]),
        "workspace_outside_arena": mem["workspace_outside_arena_bytes"],
        "peak_ram": (mem["arena_bytes"] + mem["io_outside_arena_bytes"] + mem["workspace_outside_arena_bytes"]
                     + report.measurement.stack_bytes),
        "tflm_arena": TFLM_ARENA_BYTES.get(name) if precision == "int8" else None,
        "compile_seconds": compiled.manifest["compile_seconds"],
        "relative_error_vs_onnxruntime": report.relative_error,
        "max_abs_error_vs_onnxruntime": report.max_abs_error,
        "per_layer_instructions": [round(x) for x in report.measurement.layers],
    }


def _patch_rows(rows: list[dict]) -> None:
    """Each patched build against the same model's build without patches: RAM, instructions, outputs."""
    whole = {(r["model"], r["board"]): r for r in rows if r["precision"] == "int8" and not r["patch_grid"]}
    for r in rows:
        base = whole.get((r["model"], r["board"])) if r["patch_grid"] else None
        if base is None:
            continue
        r["instructions_overhead"] = r["instructions"] / base["instructions"] - 1
        r["bit_exact_with_unpatched"] = r["outputs"] == base["outputs"]
        p = r["patches"]
        print(f"patches {r['model']} {r['board']} {r['patch_grid']} up to {p['ends_at']}: peak RAM "
              f"{r['peak_ram']:,} B against {base['peak_ram']:,} B ({r['peak_ram'] / base['peak_ram']:.2f}x), "
              f"instructions {r['instructions']:,} against {base['instructions']:,} "
              f"({100 * r['instructions_overhead']:+.1f} %; halo MACs +{100 * p['recompute']:.0f} %), outputs "
              f"{'bit-exact' if r['bit_exact_with_unpatched'] else 'DIFFERENT'} with the build without patches")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("build/bench/compile_zoo.json"))
    parser.add_argument("--models", nargs="*", default=zoo.model_names())
    parser.add_argument("--boards", nargs="*", default=list(BOARDS))
    parser.add_argument("--precisions", nargs="*", default=["fp32", "int8"], choices=["fp32", "int8"])
    parser.add_argument("--patch-grids", nargs="*", default=[], metavar="RxC",
                        help="int8 only: also build each model with its first stage in patches of these grids")
    args = parser.parse_args()
    rows = []
    header = (f"{'model':<15} {'prec':<5} {'board':<11} {'MACs':>11} {'instructions':>13} {'instr/MAC':>9} "
              f"{'weights B':>10} {'code B':>8} {'arena B':>9} {'bound B':>9} {'stack B':>7} {'peak RAM B':>10} "
              f"{'TFLM B':>8} {'ratio':>6} {'compile s':>9} {'error':>8}")
    print(header)
    with tempfile.TemporaryDirectory() as scratch:
        grids = [None] + args.patch_grids
        for name, precision, board, grid in itertools.product(args.models, args.precisions, args.boards, grids):
            if grid and precision != "int8":
                continue
            r = measure(name, precision, board, Path(scratch), grid)
            rows.append(r)
            error = r["relative_error_vs_onnxruntime"] if precision == "fp32" else r["max_abs_error_vs_onnxruntime"]
            tflm = r["tflm_arena"]
            tflm_text, ratio = (f"{tflm:,}", f"{r['peak_ram'] / tflm:.2f}x") if tflm else ("-", "-")
            print(f"{name + (' ' + grid if grid else ''):<15} {precision:<5} {board:<11} {r['macs']:>11,} {r['instructions']:>13,} "
                  f"{r['instructions_per_mac']:>9.2f} {r['flash_weights']:>10,} {r['flash_code']:>8,} "
                  f"{r['arena_planned']:>9,} {r['arena_liveness_bound']:>9,} {r['ram_stack_used']:>7,} "
                  f"{r['peak_ram']:>10,} {tflm_text:>8} {ratio:>6} "
                  f"{r['compile_seconds']:>9.1f} {error:>8.2g}", flush=True)
    _patch_rows(rows)
    compared = [r for r in rows if r["tflm_arena"]]
    for r in compared:
        verdict = "ok" if r["peak_ram"] <= RAM_BAR * r["tflm_arena"] else f"ABOVE the {RAM_BAR}x bar"
        print(f"peak RAM {r['model']}{' ' + r['patch_grid'] if r['patch_grid'] else ''} {r['board']}: {r['peak_ram']:,} B = arena {r['arena_planned']:,} + beside it "
              f"I/O {r['io_outside_arena']:,} and workspace {r['workspace_outside_arena']:,} + stack "
              f"{r['ram_stack_used']:,}; "
              f"TFLM arena {r['tflm_arena']:,} B: {r['peak_ram'] / r['tflm_arena']:.2f}x ({verdict})")
    result = {"benchmark": "compile_zoo", "unit": "guest instructions (QEMU -icount shift=0)",
              "peak_ram": "arena + input/output and workspace beside it + measured stack, bytes; tflm_arena: "
                          "TFLM's arena with input and output (toolchain-facts.md)",
              "error": "fp32: largest error relative to the output scale; int8: largest difference in LSB",
              "rows": rows, "published_nucleo_l4r5zi_int8_ms": PUBLISHED_M4_MS}
    write_text_atomic(args.out, json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
