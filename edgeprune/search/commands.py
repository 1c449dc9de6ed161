"""`edgeprune search`: the command line face of `edgeprune.search.search`."""
from __future__ import annotations

import argparse

from edgeprune._lazy import LazyChoices
from edgeprune._modelargs import MODEL_HELP, add_model_file_options
from edgeprune.profile.commands import add_flash_argument
from edgeprune.search.settings import PRECISIONS, RUN, SETTINGS

EPILOG = """examples:
  edgeprune search digits_cnn --device qemu:mps2-an386 --max-latency 600000 --trials 30 -o build/s
  edgeprune search digits_cnn --trials 30 -o build/s --resume          # continue a killed search
  edgeprune search my_task.py:task --device qemu:mps2-an386 --max-latency 2e6 -o build/mine
      (your model, data, finetune and metric: README, 'Your own model')
  edgeprune search digits_cnn --trials 60 --storage postgresql://edge@db/search --resume -o w1
      (run the same line on several machines: the workers share one study and stop together)

Writes OUT/report.md, OUT/pareto.png, OUT/search.json and the chosen candidate in OUT/chosen
(model.pt, model.int8.onnx, firmware/). The study lives in OUT/study.db unless --storage is given.
Each measurement is a record in the results store (--store, as for `edgeprune profile`); a
candidate whose architecture that store already holds for the device and compiler (measured by an
earlier search or by `edgeprune profile`) is not measured again.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "search", help="hardware-aware per-layer sparsity search, measured on the device",
        description="Search one pruning ratio per layer group with Optuna: every candidate is "
        "pruned, finetuned, int8-quantized, compiled and measured on the device; objectives "
        "are the task's metric on validation (default top-1) and measured latency, within "
        "latency/flash/RAM budgets.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("-o", "--out", required=True, help="output folder")
    p.add_argument("--device", default=SETTINGS.device,
                   help=f"a device URL as `edgeprune profile` takes it: qemu:BOARD, qemu-user:BOARD, "
                   f"serial:PORT?board=B, socket://HOST:PORT?board=B, ssh://HOST?board=B "
                   f"(default {SETTINGS.device})")
    add_flash_argument(p)
    p.add_argument("--trials", type=int, default=RUN.trials,
                   help=f"finished trials in the study, all workers together (default {RUN.trials})")
    g = p.add_argument_group("budgets")
    g.add_argument("--max-latency", type=float, metavar="N",
                   help="per inference, in the device's unit: instructions on QEMU, cycles on a "
                   "serial board, ns over SSH")
    g.add_argument("--max-flash", type=int, metavar="BYTES")
    g.add_argument("--max-ram", type=int, metavar="BYTES",
                   help="RAM budget (the firmware's, bytes); a candidate over it is compiled again with its first "
                   "stage in patches (2x2, 3x3, then 4x4: the first that fits; compile --patch-grid), shown as "
                   "'p4x4' in the table")
    g = p.add_argument_group("study")
    g.add_argument("--storage", help="Optuna RDB URL (default sqlite:///OUT/study.db); "
                   "postgresql://... lets several workers share the study")
    g.add_argument("--study", help="study name (default MODEL-DEVICE)")
    g.add_argument("--resume", action="store_true",
                   help="continue an existing study (or join it as another worker)")
    g.add_argument("--store", help="results store (SQLite file) the measurements go to and are reused "
                   "from, shared with edgeprune profile and report (default $EDGEPRUNE_STORE or "
                   "~/.local/share/edgeprune/results.sqlite)")
    g.add_argument("--sampler", choices=LazyChoices("edgeprune.search.storage", "SAMPLERS"), default=RUN.sampler,
                   metavar="SAMPLER", help=f"%(choices)s (default {RUN.sampler})")
    g.add_argument("--seed", type=int, help="sampler seed (default: random)")
    g = p.add_argument_group("candidates")
    g.add_argument("--uniform", type=float, nargs="*", default=list(RUN.uniform),
                   metavar="RATIO", help="uniform-pruning candidates tried first (the baseline)")
    g.add_argument("--max-ratio", type=float, default=SETTINGS.max_ratio, help="largest ratio per group")
    g.add_argument("--step", type=float, default=SETTINGS.step, help="ratio grid step")
    g.add_argument("--round-to", type=int, default=SETTINGS.round_to, help="channel counts multiples of N")
    g.add_argument("--finetune-epochs", type=int, default=SETTINGS.finetune_epochs)
    g.add_argument("--distill", type=float, default=SETTINGS.distill, metavar="WEIGHT",
                   help="weight of distillation from the unpruned model while finetuning "
                   f"(0: labels only; default {SETTINGS.distill})")
    g.add_argument("--train-epochs", type=int, default=RUN.train_epochs,
                   help=f"zoo models: training on their data before the search (default {RUN.train_epochs})")
    g.add_argument("--precision", choices=PRECISIONS, default=SETTINGS.precision,
                   help="int8 (default) or fp32: a fallback measuring float models, labelled so")
    p.add_argument("--threads", type=int, default=RUN.threads,
                   help=f"torch threads for finetuning (default {RUN.threads}: small models; on a shared "
                   "machine more threads mostly spin)")
    add_model_file_options(p)
    p.add_argument("--rescore-folds", type=int, default=0, metavar="K",
                   help="re-score the chosen candidate and its uniform neighbour on K folds of the task's "
                   "data outside validation (model retrained per fold): per-fold scores, mean, standard "
                   "error and their gap, in the report and search.json (default: off)")
    p.add_argument("--no-export", action="store_true", help="do not export the chosen candidate")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from edgeprune.search.api import search
    from edgeprune.search.report import rescore_lines, table

    result = search(args.model, device=args.device, trials=args.trials, out=args.out,
                    max_latency=args.max_latency, max_flash=args.max_flash,
                    max_ram=args.max_ram, storage=args.storage, study=args.study,
                    resume=args.resume, sampler=args.sampler, seed=args.seed,
                    uniform=args.uniform, precision=args.precision, round_to=args.round_to,
                    max_ratio=args.max_ratio, step=args.step,
                    finetune_epochs=args.finetune_epochs, distill=args.distill,
                    train_epochs=args.train_epochs, threads=args.threads,
                    export=not args.no_export, progress=not args.quiet,
                    trust_pickle=args.trust_pickle, input_shape=args.input_shape,
                    rescore_folds=args.rescore_folds, store=args.store, flash=args.flash)
    print(f"Pareto front ({len(result.front)} of {len(result.candidates)} candidates; "
          f"budgets: {result.budgets.describe(result.unit)}):")
    print(table(result.front, result.reference, result.metric, result.unit))
    print(result.message)
    if result.rescore:
        print("\n".join(rescore_lines(result.rescore, result.metric_label, result.unit)))
    print(f"report: {args.out}/report.md  plot: {args.out}/pareto.png")
    return 0 if result.chosen else 1
