"""`edgeprune run` (one run on QEMU, checked against the reference, nothing stored),
`edgeprune profile` (measure a compiled model on a device, store the record) and
`edgeprune report` (charts and an HTML page of one record, or two compared)."""
from __future__ import annotations

import argparse
from pathlib import Path

from edgeprune.errors import EdgepruneError
from edgeprune.profile.defaults import DEFAULT_DEVICE


NAME_WIDTH = 96  # longer layer labels (many fused source nodes) are cut in the table (the store keeps them whole)


def _figure(value: float) -> str:
    return f"{value:,.0f}"


def print_profile(report) -> None:
    """The table `edgeprune profile` prints."""
    from edgeprune.reference import per_output_lines

    record, m = report.record, report.measurement
    unit = record.unit
    print(f"{report.compiled.manifest.get('model', report.compiled.path.name)} on {record.device} "
          f"({report.method}), {len(record.runs)} runs")
    print(f"  {unit} per inference: median {_figure(record.median)}, min {_figure(record.minimum)}, "
          f"max {_figure(record.maximum)}")
    width = min(max([len(name) for name, _ in record.layers] + [5]), NAME_WIDTH)
    total = sum(value for _, value in record.layers) or 1.0
    print(f"  {'layer':<{width}} {unit:>14} {'share':>7}")
    for name, value in record.layers:
        name = name if len(name) <= width else name[:width - 3] + "..."
        print(f"  {name:<{width}} {_figure(value):>14} {100 * value / total:6.1f}%")
    print(f"  the layers add up to {100 * report.layer_coverage:.2f} % of the last run")
    print(f"  stack high-water {m.stack_bytes:,} B")
    if record.memory is not None:
        flash, ram = record.memory.flash, record.memory.ram
        print(f"  flash {record.memory.flash_total:,} B (weights {flash['weights']:,}, kernels "
              f"{flash['kernels']:,}, runtime {flash['runtime']:,}, libc {flash['libc']:,})")
        print(f"  RAM   {record.memory.ram_total:,} B (arena {ram['arena']:,}, workspace "
              f"{ram['workspace']:,}, stack {ram['stack']:,}, runtime {ram['runtime']:,})")
    verdict = "match" if record.outputs_match else "DIFFER"
    print(f"  outputs vs {report.reference_name}: {verdict} (max abs error {record.max_abs_error:.3g}, "
          f"relative {report.relative_error:.3g})")
    for line in per_output_lines(m.outputs, report.reference, indent="    "):
        print(line)
    if record.id is not None:
        print(f"  stored as record {record.id}")


def add_flash_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--flash", metavar="COMMAND",
                        help="serial:/socket: devices: the command that loads a firmware, {elf} standing for "
                             "its path, e.g. \"openocd -f board.cfg -c 'program {elf} verify reset exit'\"; "
                             "run before each measurement, then the link is opened again")


def _profile(args: argparse.Namespace) -> int:
    from edgeprune.profile.api import profile

    report = profile(args.folder, args.device, runs=args.runs, seed=args.seed,
                     store=False if args.no_store else args.store, json_path=args.json,
                     **({} if args.flash is None else {"flash": args.flash}))
    print_profile(report)
    return 0 if report.record.outputs_match else 1


def _report(args: argparse.Namespace) -> int:
    from edgeprune.profile.report import write_report
    from edgeprune.profile.store import ResultsStore

    with ResultsStore(args.store) as store:
        records = [store.get(i) for i in args.records] if args.records else store.latest(1)
        if not records:
            raise EdgepruneError(f"{store.path} holds no measurements; run edgeprune profile first")
    Path(args.output).mkdir(parents=True, exist_ok=True)
    page = write_report(records, Path(args.output))
    print(f"report of record {' vs '.join(str(r.id) for r in records)}: {page}")
    return 0


def _runs(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"--runs wants a positive number, got {text}")
    return value


def _record_ids(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a record id is a number, got {text!r}") from None


def _run(args: argparse.Namespace) -> int:
    import numpy as np

    from edgeprune.compile.api import step_label
    from edgeprune.compile.commands import elf_summary
    from edgeprune.profile.run import run
    from edgeprune.reference import per_output_lines

    inputs = None
    if args.input is not None:
        inputs = [np.load(args.input)]
    report = run(args.folder, inputs, runs=args.runs, seed=args.seed, timeout=args.timeout, cpu=args.cpu)
    measured = report.measurement
    steps = report.compiled.manifest["steps"]
    total = measured.last
    labels = [step_label(step) for step in steps]
    width = min(max(map(len, labels + ["total per inference"])), NAME_WIDTH)
    print(f"{report.compiled.manifest['model']} on {report.compiled.manifest['board']} ({report.method})")
    print(f"{'':<4} {'layer':<{width}} {measured.unit:>14} {'share':>7}")
    for i, (label, count) in enumerate(zip(labels, measured.layers)):
        print(f"{i:<4} {label[:width]:<{width}} {count:>14,.0f} {count / total:>7.1%}")
    print(f"{'':<4} {'total per inference':<{width}} {total:>14,.0f}")
    mem = report.compiled.manifest["memory"]
    print("memory (from the ELF):")
    print(elf_summary(report.compiled.manifest["elf"], report.compiled.manifest["board"]))
    print(f"  arena planned {mem['arena_bytes']:,} B vs liveness bound {mem['liveness_bound_bytes']:,} B; "
          f"stack used {measured.stack_bytes:,} of {mem['stack_bytes']:,} B")
    if report.reference_name == "TFLM":
        equal, total = report.exact_matches
        print(f"agreement with TFLM: {equal:,} of {total:,} output elements exactly equal, max |error| "
              f"{report.max_abs_error:.0f} ({'ok' if equal == total else 'MISMATCH'})")
        return 0 if equal == total else 1
    ok = report.relative_error <= args.rtol
    print(f"agreement with onnxruntime: max |error| {report.max_abs_error:.3g}, relative to output "
          f"scale {report.relative_error:.3g} ({'ok' if ok else 'MISMATCH'}, tolerance {args.rtol:g})")
    for line in per_output_lines(measured.outputs, report.reference):
        print(line)
    return 0 if ok else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "profile", help="measure a compiled model on a device (QEMU by default) and store the record",
        description="Run a compiled model's profiling firmware (profile.elf) on a device, print the "
                    "latency per inference and per layer, stack, flash and RAM, check the outputs "
                    "against onnxruntime and keep the record in the results store. Exit status 1 if "
                    "the outputs differ from the reference.")
    p.add_argument("folder", help="a compiled-model folder (edgeprune compile -o FOLDER)")
    p.add_argument("--device", default=DEFAULT_DEVICE,
                   help="qemu:<board> (default qemu:mps2-an386), serial:///dev/ttyACM0?board=<board>"
                        "&baud=115200&pyocd_target=<t>, or socket://host:port")
    add_flash_argument(p)
    p.add_argument("--runs", type=_runs, default=5, help="inferences to time (default 5); "
                   "the median, min and max are reported")
    p.add_argument("--seed", type=int, default=0, help="seed of the random input (default 0)")
    p.add_argument("--store", type=Path, default=None,
                   help="results store (SQLite file; default $EDGEPRUNE_STORE or "
                        "~/.local/share/edgeprune/results.sqlite)")
    p.add_argument("--no-store", action="store_true", help="do not keep the record")
    p.add_argument("--json", type=Path, default=None, help="also write the record to this JSON file")
    p.set_defaults(handler=_profile)

    r = subparsers.add_parser(
        "report", help="draw per-layer latency and memory of a stored record (or compare two)",
        description="Write a PNG of per-layer latency, a PNG of the memory breakdown and an HTML "
                    "page showing them, for one record of the results store (the latest if none "
                    "is named) or two side by side.")
    r.add_argument("records", nargs="*", type=_record_ids, metavar="RECORD_ID",
                   help="one record, or two to compare (default: the latest)")
    r.add_argument("--store", type=Path, default=None, help="results store (as for edgeprune profile)")
    r.add_argument("-o", "--output", type=Path, required=True, help="folder for report.html and its images")
    r.set_defaults(handler=_report)

    run_parser = subparsers.add_parser(
        "run", help="run a compiled model on QEMU and check it against onnxruntime or TFLM",
        description="Boot the firmware on the board's QEMU machine with -icount shift=0, feed an input, "
                    "compare the outputs with onnxruntime (TFLM's interpreter, element by element, for a model "
                    "compiled from a .tflite) and print instructions per inference and per layer.",
    )
    run_parser.add_argument("folder", type=Path, help="a folder made by edgeprune compile")
    run_parser.add_argument("--input", type=Path, help="input tensor as .npy (default: seeded random normal)")
    run_parser.add_argument("--runs", type=int, default=1, help="inferences to run (the last one is reported)")
    run_parser.add_argument("--seed", type=int, default=0, help="seed of the random input")
    run_parser.add_argument("--timeout", type=float, default=120.0, help="seconds before QEMU is stopped")
    run_parser.add_argument("--cpu", help="Linux boards: emulate this core instead of the board's (qemu-user -cpu), "
                                  "e.g. to check that the executable runs there")
    run_parser.add_argument("--rtol", type=float, default=1e-4, help="tolerated error relative to the output's scale")
    run_parser.set_defaults(handler=_run)
