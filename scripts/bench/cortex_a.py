#!/usr/bin/env python3
"""Benchmark: guest instructions per inference of the zoo models, fp32 and int8, on Cortex-A53 and
A72 (aarch64), A55 and A76 (aarch64 with SDOT; the A55 build runs on QEMU's A76) and Cortex-A7
(armv7 hard-float) under qemu-user, counted by edgeprune's TCG plugin.

int8 convolutions run the NEON kernels (compile/neon/); the JSON and the table give instructions per
MAC by layer kind (pointwise, conv, depthwise). Counts are instructions, not cycles, and exact: every model is run in two separate processes
and the benchmark fails if their counts differ. int8 models are onnxruntime's static QDQ
quantization (compile_zoo.py's `model_file`: digits calibration, untrained weights, so the
figures are about the kernels, not accuracy); their outputs are checked bit for bit against the
host build of the same integer graph. Prints a table and writes JSON.

With --onnxruntime, the same models also run in onnxruntime's aarch64 build (the host's version)
on the same emulated aarch64 cores, inside an emulated Debian arm64 root
(scripts/bench/debian-arm64-root builds it), counted by the same plugin around `session.run`
(median of 5; Python's own share varies by about 1 %). `onnxruntime_binding_instructions` is what
`session.run` costs on an Identity model of the same input, i.e. the Python binding's share;
`onnxruntime_net_instructions` is the difference. onnxruntime gets the model edgeprune compiled
(for int8 the same QDQ graph, taking and returning int8) with the session options ort_count.py
reports in the JSON; its guest outputs are compared with the host's unfused reference and with
edgeprune's. There is no armv7 onnxruntime wheel.

    .venv/bin/python scripts/bench/cortex_a.py [--onnxruntime] [--precisions fp32 int8] [--out build/bench/cortex_a.json]
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

from compile_zoo import model_file
from m4_int8 import per_kind
from edgeprune._atomic import write_text_atomic
from edgeprune.compile.api import CompiledModel, compile_model
from edgeprune.compile.host import host_outputs
from edgeprune.models import stats, zoo
from edgeprune.profile.qemu_user import COUNTER_ENV, plugin_path
from edgeprune.profile.inputs import random_inputs
from edgeprune.profile.run import run
from edgeprune.reference import reference_outputs
from edgeprune.targets import load_target, require_program

CORES = ("cortex-a53", "cortex-a72", "cortex-a55", "cortex-a76", "cortex-a7")
PRECISIONS = ("fp32", "int8")
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


def _difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())


def _op_counts(path: Path) -> dict[str, int]:
    ops = [node.op_type for node in onnx.load(path).graph.node]
    return {op: ops.count(op) for op in sorted(set(ops))}


def onnxruntime_on_emulated_core(models: dict[str, CompiledModel], outputs: dict[str, np.ndarray], cpu: str,
                                 folder: Path) -> tuple[dict[str, dict], dict]:
    """onnxruntime aarch64 in the emulated Debian root on `cpu`: per model (keyed by a file stem),
    median instructions of `session.run` (and of the Identity baseline) and its agreement with
    the host's reference and with edgeprune's `outputs`; plus the session options it used."""
    subprocess.run([str(ROOT_SCRIPT)], check=True)
    work = Path(tempfile.mkdtemp(prefix=f"onnxruntime-{cpu}-", dir=folder))  # two boards may share a core
    inputs = {}
    for stem, compiled in models.items():
        model = onnx.load(compiled.onnx)
        inputs[stem] = random_inputs(compiled.manifest)[0]
        for name, graph in ((stem, model), (f"{stem}__identity", _identity_like(model))):
            onnx.save(graph, work / f"{name}.onnx")
            np.save(work / f"{name}.npy", inputs[stem])
    counter = work / "insn.counter"
    command = [require_program("qemu-aarch64"), "-L", str(ARM64_ROOT / "root"), "-cpu", cpu,
               "-plugin", f"{plugin_path()},counter={counter}", str(ARM64_ROOT / "root/usr/bin/python3.11"),
               str(BENCH / "ort_count.py"), str(work), str(ORT_RUNS)]
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ARM64_ROOT / "site"), "PYTHONHASHSEED": "0",
           "PYTHONDONTWRITEBYTECODE": "1", COUNTER_ENV: str(counter)}
    subprocess.run(command, env=env, check=True, timeout=3600)
    counts = json.loads((work / "counts.json").read_text())
    found = {}
    for stem, compiled in models.items():
        raw, binding = statistics.median(counts[stem]), statistics.median(counts[f"{stem}__identity"])
        guest = np.load(work / f"{stem}.out.npy")
        found[stem] = {
            "onnxruntime_instructions": int(raw),
            "onnxruntime_binding_instructions": int(binding),
            "onnxruntime_net_instructions": int(raw - binding),
            "onnxruntime_spread": [int(min(counts[stem])), int(max(counts[stem]))],
            "onnxruntime_guest_vs_host_max_abs": _difference(guest, reference_outputs(compiled.onnx, [inputs[stem]])[0]),
            "onnxruntime_guest_vs_edgeprune_max_abs": _difference(guest, outputs[stem]),
            "onnxruntime_optimized_ops": _op_counts(work / f"{stem}.optimized"),
        }
    return found, counts["session_options"]


def bench_one(name: str, precision: str, board: str, folder: Path, macs: int) -> tuple[dict, CompiledModel, np.ndarray]:
    """Compile and count one model on one board (row, compiled model, first output); two
    processes must count the same."""
    compiled = compile_model(model_file(name, precision, folder), board, folder / f"{name}-{precision}-{board}")
    first, second = run(compiled), run(compiled)
    if first.measurement.run_ticks != second.measurement.run_ticks or first.measurement.layer_ticks != second.measurement.layer_ticks:
        raise SystemExit(f"{name} ({precision}) on {board}: two processes counted differently "
                         f"({first.measurement.run_ticks} vs {second.measurement.run_ticks})")
    device = first.measurement
    layers = sorted(zip(device.layers, (s["kernel"] for s in compiled.manifest["steps"])), reverse=True)
    if precision == "int8":
        host = host_outputs(compiled, first.inputs)
        check = {"equals_host_build": all(np.array_equal(d, h) for d, h in zip(device.outputs, host, strict=True)),
                 "max_abs_lsb_vs_onnxruntime": first.max_abs_error}
    else:
        check = {"relative_error_vs_onnxruntime": first.relative_error}
    return {
        "model": name, "precision": precision, "board": board, "cpu": load_target(board).qemu_cpu, "macs": macs,
        "instructions": int(device.last),
        "instructions_per_mac": device.last / macs,
        "per_layer_instructions": [int(x) for x in device.layers],
        "by_kind": per_kind(compiled.manifest, device.layers),
        "heaviest_kernel": {"kernel": layers[0][1], "share": layers[0][0] / device.last},
        "clock_reading_instructions": device.timer_cost,
        "executable_bytes": compiled.elf.stat().st_size,
        "weights_bytes": compiled.manifest["memory"]["weights_bytes"],
        "stack_used_bytes": device.stack_bytes,
        **check,
        "identical_in_two_processes": True,
    }, compiled, device.outputs[0]


def _check_cell(row: dict) -> str:
    if row["precision"] == "int8":
        return "bit-exact" if row["equals_host_build"] else "DIFFERS"
    return f"{row['relative_error_vs_onnxruntime']:.1e}"


def print_onnxruntime(rows: list[dict], compiled: dict, outputs: dict, folder: Path) -> dict:
    """Adds onnxruntime's counts to the rows of aarch64 boards and prints them side by side;
    returns the session options onnxruntime ran with."""
    print(f"\n{'model':<15} {'prec':<5} {'board':<11} {'edgeprune':>12} {'onnxruntime':>12} {'(binding)':>10} "
          f"{'ort net':>12} {'ratio':>6} {'ort vs host':>11} {'ort vs ep':>9}")
    options = {}
    for board in dict.fromkeys(r["board"] for r in rows):
        target = load_target(board)
        if target.qemu_user != "qemu-aarch64":
            print(f"{'':<15} {'':<5} {board:<11} (no onnxruntime build for this core on PyPI)")
            continue
        mine = [r for r in rows if r["board"] == board]
        stems = {f"{r['model']}-{r['precision']}": r for r in mine}
        ort_counts, options = onnxruntime_on_emulated_core(
            {stem: compiled[r["model"], r["precision"], board] for stem, r in stems.items()},
            {stem: outputs[r["model"], r["precision"], board] for stem, r in stems.items()}, target.qemu_cpu, folder)
        for stem, row in stems.items():
            row.update(ort_counts[stem])
            print(f"{row['model']:<15} {row['precision']:<5} {row['board']:<11} {row['instructions']:>12,} "
                  f"{row['onnxruntime_instructions']:>12,} {row['onnxruntime_binding_instructions']:>10,} "
                  f"{row['onnxruntime_net_instructions']:>12,} "
                  f"{row['instructions'] / row['onnxruntime_net_instructions']:>6.2f} "
                  f"{row['onnxruntime_guest_vs_host_max_abs']:>11.3g} {row['onnxruntime_guest_vs_edgeprune_max_abs']:>9.3g}",
                  flush=True)
    return options


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("build/bench/cortex_a.json"))
    parser.add_argument("--models", nargs="*", default=zoo.model_names())
    parser.add_argument("--boards", nargs="*", default=list(CORES))
    parser.add_argument("--precisions", nargs="*", default=list(PRECISIONS), choices=PRECISIONS)
    parser.add_argument("--onnxruntime", action="store_true",
                        help="also count onnxruntime aarch64 in an emulated Debian arm64 root on the aarch64 cores")
    args = parser.parse_args()
    print(f"{'model':<15} {'prec':<5} {'MACs':>11} " + " ".join(f"{b + ' instr':>18} {'/MAC':>5}" for b in args.boards)
          + f"  {'heaviest kernel (first board)':<40} {'check':>9}")
    rows, compiled, outputs, session_options = [], {}, {}, None
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.models:
            macs = stats.count(zoo.build_model(name), zoo.input_shape(name)).macs
            for precision in args.precisions:
                found = []
                for board in args.boards:
                    key = name, precision, board
                    row, compiled[key], outputs[key] = bench_one(name, precision, board, Path(scratch), macs)
                    found.append(row)
                rows += found
                cells = " ".join(f"{r['instructions']:>18,} {r['instructions_per_mac']:>5.2f}" for r in found)
                heavy = found[0]["heaviest_kernel"]
                print(f"{name:<15} {precision:<5} {macs:>11,} {cells}  {heavy['kernel'][:33]:<33} {heavy['share']:>6.1%} "
                      f"{', '.join(dict.fromkeys(_check_cell(r) for r in found)):>9}", flush=True)
                for r in found:
                    if r["by_kind"]:
                        print(f"{'':<15} {'':<5} {r['board']:>11}  instructions/MAC by layer kind: "
                              + ", ".join(f"{k} {v['per_mac']:.2f}" for k, v in r["by_kind"].items()), flush=True)
        if args.onnxruntime:
            session_options = print_onnxruntime(rows, compiled, outputs, Path(scratch))
    result = {
        "benchmark": "cortex_a", "precisions": args.precisions,
        "unit": "guest instructions per inference (qemu-user 7.2 with edgeprune's TCG plugin; net of the "
                "clock's own instructions per reading)",
        "int8_models": "onnxruntime static quantizer, QDQ, digits calibration (64 samples), untrained weights",
        "onnxruntime_session_options": session_options,
        "rows": rows,
    }
    write_text_atomic(args.out, json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
