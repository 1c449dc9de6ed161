#!/usr/bin/env python3
"""Benchmark: the zoo models, fp32, compiled for Cortex-M4 / M7 / M55 and measured on QEMU.

Prints, per model and board: MACs, instructions per inference (QEMU -icount: instructions, not
cycles), instructions per MAC, flash (weights / code), RAM (arena / workspace / stack used),
planned arena vs liveness bound, compile seconds, and agreement with onnxruntime; writes JSON.

    .venv/bin/python scripts/bench/compile_zoo.py [--out build/bench/compile_zoo.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from edgeprune._atomic import write_text_atomic
from edgeprune.compile.api import compile_model
from edgeprune.models import stats, zoo
from edgeprune.profile.run import run

BOARDS = ("mps2-an386", "mps2-an500", "mps3-an547")
# Published MLPerf Tiny v1.0 closed-division latency on NUCLEO-L4R5ZI (Cortex-M4F, 120 MHz), ms,
# for context only (int8, real silicon cycles; ours is fp32 instructions on QEMU).
PUBLISHED_M4_MS = {"kws_dscnn": {"X-CUBE-AI": 43.2, "TFLM+CMSIS-NN": 181.9},
                   "vww_mobilenet": {"X-CUBE-AI": 88.9, "TFLM+CMSIS-NN": 600.6},
                   "ic_resnet8": {"X-CUBE-AI": 165.1, "TFLM+CMSIS-NN": 704.2},
                   "ad_autoencoder": {"X-CUBE-AI": 4.79, "TFLM+CMSIS-NN": 10.05}}


def measure(name: str, board: str, scratch: Path) -> dict:
    compiled = compile_model(name, board, scratch / f"{name}-{board}")
    report = run(compiled)
    macs = stats.count(zoo.build_model(name), zoo.input_shape(name)).macs
    elf, mem = compiled.manifest["elf"], compiled.manifest["memory"]
    code = sum(elf["flash"][k] for k in ("kernels", "runtime", "libc", "unattributed", "other"))
    return {
        "model": name, "board": board, "macs": macs,
        "instructions": round(report.device.instructions),
        "instructions_per_mac": report.device.instructions / macs,
        "flash_weights": elf["flash"]["weights"], "flash_code": code, "flash_total": elf["flash_total"],
        "ram_arena": elf["ram"]["arena"], "ram_workspace": mem["workspace_bytes"],
        "ram_stack_used": report.device.stack_bytes, "ram_total": elf["ram_total"],
        "arena_planned": mem["arena_bytes"], "arena_liveness_bound": mem["liveness_bound_bytes"],
        "compile_seconds": compiled.manifest["compile_seconds"],
        "relative_error_vs_onnxruntime": report.relative_error,
        "per_layer_instructions": [round(x) for x in report.device.layer_instructions],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("build/bench/compile_zoo.json"))
    parser.add_argument("--models", nargs="*", default=zoo.model_names())
    parser.add_argument("--boards", nargs="*", default=list(BOARDS))
    args = parser.parse_args()
    rows = []
    header = (f"{'model':<15} {'board':<11} {'MACs':>11} {'instructions':>13} {'instr/MAC':>9} "
              f"{'weights B':>10} {'code B':>8} {'arena B':>9} {'bound B':>9} {'stack B':>7} {'compile s':>9} {'rel.err':>8}")
    print(header)
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.models:
            for board in args.boards:
                r = measure(name, board, Path(scratch))
                rows.append(r)
                print(f"{name:<15} {board:<11} {r['macs']:>11,} {r['instructions']:>13,} {r['instructions_per_mac']:>9.2f} "
                      f"{r['flash_weights']:>10,} {r['flash_code']:>8,} {r['arena_planned']:>9,} {r['arena_liveness_bound']:>9,} "
                      f"{r['ram_stack_used']:>7,} {r['compile_seconds']:>9.1f} {r['relative_error_vs_onnxruntime']:>8.1e}",
                      flush=True)
    result = {"benchmark": "compile_zoo", "precision": "fp32", "unit": "guest instructions (QEMU -icount shift=0)",
              "rows": rows, "published_nucleo_l4r5zi_int8_ms": PUBLISHED_M4_MS}
    write_text_atomic(args.out, json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
