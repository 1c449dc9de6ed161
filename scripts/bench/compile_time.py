#!/usr/bin/env python3
"""Benchmark: compile time of the int8 MLPerf Tiny architectures, and where it goes.

Issue 14's bar is compile time no more than 2x the portable kernels' at the time it was filed
(`compile_seconds` on mps2-an386, int8: KWS 1.5 s, VWW 4.3 s, IC 12.5 s, AD 3.1 s). The machine is
shared, so besides the manifest's wall-clock `compile_seconds` this prints the CPU seconds of the
compile (this process and its children: make, gcc) and the load average, and, under cProfile
(which slows Python down), the cumulative seconds of each phase: import and graph passes, the
DSP/NEON kernels' TVMScript within them, kernel lowering (KERNEL_PASSES), the in-place twins
(`take_twins`: built and lowered), LLVM code generation and the firmware's make. Models are
quantized as m4_int8.py does (digits calibration, untrained weights).

    .venv/bin/python scripts/bench/compile_time.py [--models vww_mobilenet ...] [--repeat 2] [--kernels auto]
"""
from __future__ import annotations

import argparse
import cProfile
import multiprocessing
import os
import pstats
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from edgeprune.compile import api, firmware, inplace, passes
from edgeprune.quantize import quantize

MODELS = ("kws_dscnn", "vww_mobilenet", "ic_resnet8", "ad_autoencoder")
BASELINE_SECONDS = {"kws_dscnn": 1.5, "vww_mobilenet": 4.3, "ic_resnet8": 12.5, "ad_autoencoder": 3.1}
TVMSCRIPT = "TVMScript kernels (within import and twins)"  # the prim_func parses: no one function of ours
PHASES = {"import + graph passes": api._import, TVMSCRIPT: None, "kernel lowering": passes.run_passes,
          "in-place twins": inplace.take_twins, "LLVM build": api._kernel_code, "firmware make": firmware.build}


def _entry(stats: pstats.Stats, function) -> tuple:
    """pstats' (calls, primitive calls, total, cumulative, callers) of a Python function; zeros if not called."""
    code = function.__code__
    return next((entry for (file, line, _), entry in stats.stats.items()
                 if file == code.co_filename and line == code.co_firstlineno), (0, 0, 0.0, 0.0, {}))


def phases(stats: pstats.Stats) -> dict[str, float]:
    """Cumulative seconds per phase; kernel lowering without the graph passes that run_passes also runs."""
    seconds = {name: _entry(stats, f)[3] for name, f in PHASES.items() if f is not None}
    callers = _entry(stats, passes.run_passes)[4]
    seconds["kernel lowering"] -= sum(entry[3] for (_, _, caller), entry in callers.items() if caller == "plan_graph")
    seconds[TVMSCRIPT] = sum(entry[3] for (file, _, name), entry in stats.stats.items()
                             if name == "prim_func" and file.endswith("tirx/script/parser/entry.py"))
    return {name: seconds[name] for name in PHASES}


def measure(name: str, quantized: Path, out: Path, kernels: str, profile: bool) -> dict:
    """One compile: manifest seconds, CPU seconds, and with `profile` the phases. Run it in a fresh
    process (`cold`): the kernel builders cache their TVMScript per layer, so a second compile of a
    model in one process parses nothing."""
    profiler = cProfile.Profile() if profile else None
    load, before = os.getloadavg()[0], os.times()
    if profiler:
        profiler.enable()
    compiled = api.compile_model(quantized, "mps2-an386", out, kernels=kernels)
    if profiler:
        profiler.disable()
    after = os.times()
    return {"model": name, "compile_seconds": compiled.manifest["compile_seconds"],
            "cpu_seconds": sum(after[:4]) - sum(before[:4]), "load": load,
            "kernel_bytes": compiled.manifest["elf"]["flash"]["kernels"],
            "phases": phases(pstats.Stats(profiler)) if profiler else {}}


def cold(*args) -> dict:
    """`measure` in a new interpreter."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(measure, *args).result()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--kernels", default="auto", choices=("auto", "portable"))
    parser.add_argument("--repeat", type=int, default=2,
                        help="timed compiles per model (then one under cProfile), each in a new process")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        for name in args.models:
            quantized = scratch / f"{name}.int8.onnx"
            quantize(name, "digits", quantized, train_epochs=0, samples=64, write_report=False)
            for run in range(args.repeat + 1):
                row = cold(name, quantized, scratch / f"{name}-{run}", args.kernels, run == args.repeat)
                if row["phases"]:
                    print("  under cProfile: " + ", ".join(f"{p} {s:.2f} s" for p, s in row["phases"].items()))
                else:
                    bar = 2 * BASELINE_SECONDS[name]
                    print(f"{name:<15} compile {row['compile_seconds']:5.2f} s (bar {bar:.1f} s), "
                          f"CPU {row['cpu_seconds']:5.2f} s, load {row['load']:.1f}, kernels {row['kernel_bytes']:,} B")
                sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
