#!/usr/bin/env python3
"""Benchmark: guest instructions per inference of the zoo models (fp32) on Cortex-A53 (aarch64)
and Cortex-A7 (armv7 hard-float) under qemu-user, counted by edgeprune's TCG plugin.

Counts are instructions, not cycles, and exact: every model is run in two separate processes
and the benchmark fails if their counts differ. Prints a table and writes JSON.

With --onnxruntime, the same models also run in onnxruntime's aarch64 build (the host's version)
on the same emulated aarch64 cores, inside an emulated Debian arm64 root
(scripts/bench/debian-arm64-root builds it), counted by the same plugin around `session.run`
(median of 5; Python's own share varies by about 1 %). `onnxruntime_binding_instructions` is what
`session.run` costs on an Identity model of the same input, i.e. the Python binding's share;
`onnxruntime_net_instructions` is the difference. There is no armv7 onnxruntime wheel.

    .venv/bin/python scripts/bench/cortex_a.py [--onnxruntime] [--out build/bench/cortex_a.json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from edgeprune._atomic import write_text_atomic
from edgeprune.compile.api import CompiledModel, compile_model
from edgeprune.models import stats, zoo
from edgeprune.profile.qemu_user import COUNTER_ENV, plugin_path
from edgeprune.profile.run import random_inputs, reference_outputs, run
from edgeprune.targets import load_target, require_program

CORES = ("cortex-a53", "cortex-a7")
BENCH = Path(__file__).resolve().parent
ROOT_SCRIPT = BENCH / "debian-arm64-root"
ARM64_ROOT = BENCH.parent.parent / "build" / "arm64-root"
ORT_RUNS = 5


def _identity_like(model: onnx.ModelProto) -> onnx.ModelProto:
    """An Identity model with the same input: what `session.run` costs doing nothing."""
    graph_input = model.graph.input[0]
    output = helper.make_tensor_value_info("y", graph_input.type.tensor_type.elem_type, None)
    graph = helper.make_graph([helper.make_node("Identity", [graph_input.name], ["y"])], "identity",
                              [graph_input], [output])
    return helper.make_model(graph, opset_imports=model.opset_import, ir_version=model.ir_version)


def onnxruntime_on_emulated_core(models: dict[str, CompiledModel], cpu: str, folder: Path) -> dict[str, dict]:
    """onnxruntime aarch64 in the emulated Debian root on `cpu`: per model, median instructions
    of `session.run` (and of the Identity baseline), and its agreement with the host's."""
    subprocess.run([str(ROOT_SCRIPT)], check=True)
    work = folder / f"onnxruntime-{cpu}"
    work.mkdir()
    inputs = {}
    for name, compiled in models.items():
        model = onnx.load(compiled.onnx)
        inputs[name] = random_inputs(compiled.manifest)[0]
        for stem, graph in ((name, model), (f"{name}__identity", _identity_like(model))):
            onnx.save(graph, work / f"{stem}.onnx")
            np.save(work / f"{stem}.npy", inputs[name])
    counter = work / "insn.counter"
    command = [require_program("qemu-aarch64"), "-L", str(ARM64_ROOT / "root"), "-cpu", cpu,
               "-plugin", f"{plugin_path()},counter={counter}", str(ARM64_ROOT / "root/usr/bin/python3.11"),
               str(BENCH / "ort_count.py"), str(work), str(ORT_RUNS)]
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ARM64_ROOT / "site"), "PYTHONHASHSEED": "0",
           "PYTHONDONTWRITEBYTECODE": "1", COUNTER_ENV: str(counter)}
    subprocess.run(command, env=env, check=True, timeout=1800)
    counts = json.loads((work / "counts.json").read_text())
    found = {}
    for name, compiled in models.items():
        raw, binding = statistics.median(counts[name]), statistics.median(counts[f"{name}__identity"])
        host = reference_outputs(compiled.onnx, [inputs[name]])[0]
        guest = np.load(work / f"{name}.out.npy")
        found[name] = {
            "onnxruntime_instructions": int(raw),
            "onnxruntime_binding_instructions": int(binding),
            "onnxruntime_net_instructions": int(raw - binding),
            "onnxruntime_spread": [int(min(counts[name])), int(max(counts[name]))],
            "onnxruntime_guest_vs_host_max_abs": float(np.abs(guest - host).max()),
        }
    return found


def bench_one(model: str, board: str, folder: Path, macs: int) -> tuple[dict, CompiledModel]:
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
    }, compiled


def print_onnxruntime(rows: list[dict], compiled: dict, folder: Path) -> None:
    """Adds onnxruntime's counts to the rows of aarch64 boards and prints them side by side."""
    print(f"\n{'model':<15} {'core':<11} {'edgeprune':>12} {'onnxruntime':>12} {'(binding)':>10} {'ort net':>12} {'ratio':>6}")
    for board in dict.fromkeys(r["board"] for r in rows):
        target = load_target(board)
        if target.qemu_user != "qemu-aarch64":
            print(f"{'':<15} {board:<11} (no onnxruntime build for this core on PyPI)")
            continue
        ort_counts = onnxruntime_on_emulated_core(
            {m: c for (m, b), c in compiled.items() if b == board}, target.qemu_cpu, folder)
        for row in (r for r in rows if r["board"] == board):
            row.update(ort_counts[row["model"]])
            print(f"{row['model']:<15} {row['cpu']:<11} {row['instructions']:>12,} {row['onnxruntime_instructions']:>12,} "
                  f"{row['onnxruntime_binding_instructions']:>10,} {row['onnxruntime_net_instructions']:>12,} "
                  f"{row['instructions'] / row['onnxruntime_net_instructions']:>6.2f}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("build/bench/cortex_a.json"))
    parser.add_argument("--models", nargs="*", default=zoo.model_names())
    parser.add_argument("--boards", nargs="*", default=list(CORES))
    parser.add_argument("--onnxruntime", action="store_true",
                        help="also count onnxruntime aarch64 in an emulated Debian arm64 root on the aarch64 cores")
    args = parser.parse_args()
    print(f"{'model':<15} {'MACs':>11} " + " ".join(f"{b + ' instr':>18} {'/MAC':>5}" for b in args.boards)
          + f"  {'heaviest kernel (first board)':<40} {'rel.err':>8}")
    rows, compiled = [], {}
    with tempfile.TemporaryDirectory() as scratch:
        for model in args.models:
            macs = stats.count(zoo.build_model(model), zoo.input_shape(model)).macs
            found = []
            for board in args.boards:
                row, compiled[model, board] = bench_one(model, board, Path(scratch), macs)
                found.append(row)
            rows += found
            cells = " ".join(f"{r['instructions']:>18,} {r['instructions_per_mac']:>5.2f}" for r in found)
            heavy = found[0]["heaviest_kernel"]
            worst = max(r["relative_error_vs_onnxruntime"] for r in found)
            print(f"{model:<15} {macs:>11,} {cells}  {heavy['kernel'][:33]:<33} {heavy['share']:>6.1%} {worst:>8.1e}",
                  flush=True)
        if args.onnxruntime:
            print_onnxruntime(rows, compiled, Path(scratch))
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
