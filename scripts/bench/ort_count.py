"""Runs inside the emulated Debian arm64 root (scripts/bench/debian-arm64-root) under qemu-aarch64
with edgeprune's counting plugin: guest instructions of onnxruntime's `session.run`.

    python3.11 ort_count.py WORK RUNS

WORK holds NAME.onnx and NAME.npy (the input) pairs. For each model it runs one warm-up
inference, then RUNS counted ones, and writes WORK/NAME.out.npy (the output) and WORK/counts.json:
{NAME: [instructions of each run]} plus "clock_cost", the instructions of one clock reading from
Python (already taken off every count), "session_options" (the onnxruntime options every session
used); and WORK/NAME.optimized, the graph onnxruntime ran after its optimizations (ONNX; e.g. QDQ
groups fused into QLinearConv). The clock is the same as the edgeprune executable's: the
marker system call makes the plugin store its count in the counter file EP_INSN_COUNTER.
"""
import ctypes
import json
import os
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

MARKER_SYSCALL = 0x4550  # targets/linux/ep_linux_board.c
_libc = ctypes.CDLL(None)
_counter = os.open(os.environ["EP_INSN_COUNTER"], os.O_RDONLY)


def instructions_so_far() -> int:
    _libc.syscall(MARKER_SYSCALL)
    return int.from_bytes(os.pread(_counter, 8, 0), "little")


def main() -> None:
    work, runs = Path(sys.argv[1]), int(sys.argv[2])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # one thread: the plugin's counter is per process
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # saving the optimized graph warns that it is hardware specific: it is meant to be
    start = instructions_so_far()
    cost = instructions_so_far() - start
    counts = {"clock_cost": cost, "session_options": {
        "graph_optimization_level": str(options.graph_optimization_level),
        "intra_op_num_threads": options.intra_op_num_threads, "inter_op_num_threads": options.inter_op_num_threads,
        "execution_mode": str(options.execution_mode),
        "providers": ["CPUExecutionProvider"], "onnxruntime": ort.__version__}}
    for model in sorted(work.glob("*.onnx")):
        options.optimized_model_filepath = str(model.with_suffix(".optimized"))
        session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        feeds = {session.get_inputs()[0].name: np.load(model.with_suffix(".npy"))}
        np.save(model.with_suffix(".out.npy"), session.run(None, feeds)[0])
        counts[model.stem] = []
        for _ in range(runs):
            before = instructions_so_far()
            session.run(None, feeds)
            counts[model.stem].append(instructions_so_far() - before - cost)
    (work / "counts.json").write_text(json.dumps(counts))


main()
