#!/usr/bin/env python3
"""Benchmark: guest instructions per inference of the zoo models (fp32) on Cortex-A53 (aarch64)
and Cortex-A7 (armv7 hard-float) under qemu-user, counted by edgeprune's TCG plugin.

Counts are instructions, not cycles, and exact: every model is run in two separate processes
and the benchmark fails if their counts differ. Prints a table and writes JSON.

    .venv/bin/python scripts/bench/cortex_a.py [--out build/bench/cortex_a.json]
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

CORES = ("cortex-a53", "cortex-a7")


def bench_one(model: str, board: str, folder: Path, macs: int) -> dict:
    compiled = compile_model(model, board, folder / f"{model}-{board}")
    first, second = run(compiled), run(compiled)
    if first.device.run_ticks != second.device.run_ticks or first.device.layer_ticks != second.device.layer_ticks:
        raise SystemExit(f"{model} on {board}: two processes counted differently "
                         f"({first.device.run_ticks} vs {second.device.run_ticks})")
    device = first.device
    layers = sorted(zip(device.layer_instructions, (s["kernel"] for s in compiled.manifest["steps"])), reverse=True)
    return {
        "model": model, "board": board, "cpu": device.cpu, "macs": macs,
        "instructions": int(device.instructions),
        "instructions_per_mac": device.instructions / macs,
        "per_layer_instructions": [int(x) for x in device.layer_instructions],
        "heaviest_kernel": {"kernel": layers[0][1], "share": layers[0][0] / device.instructions},
        "clock_reading_instructions": device.timer_cost,
        "executable_bytes": compiled.elf.stat().st_size,
        "weights_bytes": compiled.manifest["memory"]["weights_bytes"],
        "stack_used_bytes": device.stack_bytes,
        "relative_error_vs_onnxruntime": first.relative_error,
        "identical_in_two_processes": True,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("build/bench/cortex_a.json"))
    parser.add_argument("--models", nargs="*", default=zoo.model_names())
    parser.add_argument("--boards", nargs="*", default=list(CORES))
    args = parser.parse_args()
    print(f"{'model':<15} {'MACs':>11} " + " ".join(f"{b + ' instr':>18} {'/MAC':>5}" for b in args.boards)
          + f"  {'heaviest kernel (first board)':<40} {'rel.err':>8}")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for model in args.models:
            macs = stats.count(zoo.build_model(model), zoo.input_shape(model)).macs
            found = [bench_one(model, board, Path(scratch), macs) for board in args.boards]
            rows += found
            cells = " ".join(f"{r['instructions']:>18,} {r['instructions_per_mac']:>5.2f}" for r in found)
            heavy = found[0]["heaviest_kernel"]
            worst = max(r["relative_error_vs_onnxruntime"] for r in found)
            print(f"{model:<15} {macs:>11,} {cells}  {heavy['kernel'][:33]:<33} {heavy['share']:>6.1%} {worst:>8.1e}",
                  flush=True)
    result = {
        "benchmark": "cortex_a", "precision": "fp32",
        "unit": "guest instructions per inference (qemu-user 7.2 with edgeprune's TCG plugin; net of the "
                "clock's own instructions per reading)",
        "rows": rows,
    }
    write_text_atomic(args.out, json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
