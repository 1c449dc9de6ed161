"""`edgeprune prune`: the command line face of `edgeprune.prune.prune`."""
from __future__ import annotations

import argparse
import json
import sys

from typing import TYPE_CHECKING

from edgeprune._atomic import write_text_atomic
from edgeprune._lazy import LazyChoices
from edgeprune._modelargs import MODEL_HELP, add_model_file_options
from edgeprune.prune.errors import NothingPrunedError, PruneError

if TYPE_CHECKING:
    from edgeprune.prune.api import Outcome

EPILOG = """examples:
  edgeprune prune digits_cnn --ratio 0.3 --rounds 3 --out build/digits.pt --onnx build/digits.onnx
  edgeprune prune ic_resnet8 --layer-ratio 3.conv1.0=0.5 --criterion fpgm --round-to 4 --out r8.pt
  edgeprune prune build/digits.pt --method unstructured --sparsity 0.8 --gradual --finetune-epochs 10 --out s.pt
  edgeprune prune digits_cnn --ratio 0.5 --rounds 4 --max-drop 1 --out d.pt   # budget-gated search
  edgeprune prune my_task.py:task --ratio 0.3 --out build/mine.pt --onnx build/mine.onnx   # your model

Every method runs --rounds (default 1) of prune -> finetune -> validate. A round that loses more
than --max-drop points (default 2) of validation accuracy is rejected, reported, and the previous
round's model kept. If no round is accepted the command writes no model and exits 1, unless both
--rounds and --max-drop were given (a budget-gated search, which may keep the unpruned model).
"""


def layer_ratio(text: str) -> tuple[str, float]:
    name, sep, value = text.rpartition("=")
    try:
        if not sep or not name:
            raise ValueError
        return name, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LAYER=RATIO, got {text!r}") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "prune", help="prune a model (structured, unstructured, block removal, low rank)",
        description="Prune a task's model (your model, data, finetune and metric), a zoo model "
        "(trained here on digits first) or a model saved by edgeprune; score it before and after "
        "(test split, or the task's evaluate); save the result and optionally ONNX.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--out", help="where to save the pruned model (.pt)")
    p.add_argument("--onnx", help="also export the pruned model to this ONNX file")
    p.add_argument("--report", help="write the JSON report here")
    p.add_argument("--method", choices=LazyChoices("edgeprune.prune.api", "METHODS"), default="channels",
                   metavar="METHOD", help="%(choices)s (default channels)")
    p.add_argument("--data", help=".npz with arrays x, y (default: scikit-learn digits)")
    p.add_argument("--criterion", metavar="CRITERION",
                   choices=LazyChoices("edgeprune.prune.criteria", "CRITERIA", ("edgeprune.prune.unstructured", "CRITERIA")),
                   help="%(choices)s; channels default to l1, unstructured to magnitude")
    g = p.add_argument_group("rounds and accuracy budget (every method)")
    g.add_argument("--rounds", type=int, help="prune/finetune rounds (default 1)")
    g.add_argument("--max-drop", type=float,
                   help="reject a round that loses more validation accuracy than this many points (default 2)")
    g.add_argument("--checkpoint", help="resumable checkpoint file")
    g = p.add_argument_group("structured channel pruning (--method channels)")
    g.add_argument("--ratio", type=float, help="fraction of channels to remove in every layer (default 0.5)")
    g.add_argument("--layer-ratio", type=layer_ratio, action="append", metavar="LAYER=RATIO",
                   help="per-layer ratio instead of --ratio; repeatable")
    g.add_argument("--round-to", type=int, help="keep channel counts multiples of N")
    g.add_argument("--ignore", action="append", default=[], metavar="LAYER",
                   help="layer never pruned; repeatable")
    g.add_argument("--slimming-epochs", type=int,
                   help="with --criterion bn_scale: L1-regularised training on BN scales first")
    g = p.add_argument_group("unstructured pruning (--method unstructured)")
    g.add_argument("--sparsity", type=float, help="fraction of weights zeroed (default 0.5)")
    g.add_argument("--scope", choices=("layer", "global"), help="one threshold per layer (default) or global")
    g.add_argument("--gradual", action="store_true", default=None,
                   help="raise the sparsity over the finetuning steps (Zhu & Gupta's cubic schedule)")
    g.add_argument("--first-layer-cap", type=float, metavar="SPARSITY",
                   help="prune the first layer to at most this sparsity")
    g.add_argument("--pattern", choices=("weights", "block4", "2:4"),
                   help="weights (default: each on its own), block4 (whole blocks of 4 along the reduction, "
                   "the blocks the sparse int8 kernels skip) or 2:4 (2 of every 4 zeroed; sparsity 0.5)")
    g = p.add_argument_group("other methods")
    g.add_argument("--blocks", type=int, help="blocks: how many to remove (default 1)")
    g.add_argument("--energy", type=float, help="lowrank: retained SVD energy (default 0.9)")
    g = p.add_argument_group("training")
    g.add_argument("--train-epochs", type=int, default=30, help="for zoo models (default 30)")
    g.add_argument("--finetune-epochs", type=int, default=10,
                   help="after every round, every method; unstructured keeps its masks in force (default 10)")
    add_model_file_options(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=run)


def print_outcome(outcome: Outcome) -> None:
    """The layer table, the sparsity table (unstructured) and the accuracies."""
    print(outcome.report.table())
    if outcome.sparsity is not None:
        print(outcome.sparsity.table())
    print(outcome.summary())


def run(args: argparse.Namespace) -> int:
    from edgeprune.prune.api import prune

    if args.out is None and args.onnx is None:
        raise PruneError("nothing to write: give --out and/or --onnx")
    try:
        outcome = prune(
            args.model, args.out, method=args.method, rounds=args.rounds,
            max_drop=None if args.max_drop is None else args.max_drop / 100,
            finetune_epochs=args.finetune_epochs,
            ratio=dict(args.layer_ratio) if args.layer_ratio else args.ratio, criterion=args.criterion,
            round_to=args.round_to, ignored=tuple(args.ignore), slimming_epochs=args.slimming_epochs,
            sparsity=args.sparsity, scope=args.scope, gradual=args.gradual,
            first_layer_cap=args.first_layer_cap, pattern=args.pattern, blocks=args.blocks, energy=args.energy,
            data=args.data, input_shape=args.input_shape, train_epochs=args.train_epochs,
            checkpoint=args.checkpoint, onnx=args.onnx, progress=not args.quiet,
            trust_pickle=args.trust_pickle)
    except NothingPrunedError as exc:
        print_outcome(exc.outcome)
        if args.report:
            write_text_atomic(args.report, json.dumps(exc.outcome.to_dict(), indent=1))
        print(f"edgeprune prune: {exc}", file=sys.stderr)
        return 1
    print_outcome(outcome)
    if outcome.rejection is not None:
        print(f"budget: {outcome.rejection.message()}")
    if not outcome.pruned:
        print("nothing pruned within the budget; saved the unpruned model as asked (--rounds with --max-drop)")
    if args.report:
        write_text_atomic(args.report, json.dumps(outcome.to_dict(), indent=1))
    return 0
