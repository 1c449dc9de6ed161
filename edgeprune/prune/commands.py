"""`edgeprune prune`: the command line face of `edgeprune.prune.prune`."""
from __future__ import annotations

import argparse
import json

from edgeprune._atomic import write_text_atomic
from edgeprune._lazy import LazyChoices
from edgeprune.prune.errors import PruneError

EPILOG = """examples:
  edgeprune prune digits_cnn --ratio 0.3 --rounds 3 --out build/digits.pt --onnx build/digits.onnx
  edgeprune prune ic_resnet8 --layer-ratio 3.conv1.0=0.5 --criterion fpgm --round-to 4 --out r8.pt
  edgeprune prune build/digits.pt --method unstructured --sparsity 0.8 --scope global --out s.pt
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
        description="Prune a zoo model (trained here on digits first) or a model saved by "
        "edgeprune; evaluate on the test split; save the result and optionally ONNX.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="zoo model name or a .pt file saved by edgeprune")
    p.add_argument("--out", help="where to save the pruned model (.pt)")
    p.add_argument("--onnx", help="also export the pruned model to this ONNX file")
    p.add_argument("--report", help="write the JSON report here")
    p.add_argument("--method", choices=LazyChoices("edgeprune.prune.api", "METHODS"), default="channels",
                   metavar="METHOD", help="%(choices)s (default channels)")
    p.add_argument("--data", help=".npz with arrays x, y (default: scikit-learn digits)")
    g = p.add_argument_group("structured channel pruning")
    g.add_argument("--ratio", type=float, default=0.5,
                   help="fraction of channels to remove in every layer (default 0.5)")
    g.add_argument("--layer-ratio", type=layer_ratio, action="append", metavar="LAYER=RATIO",
                   help="per-layer ratio instead of --ratio; repeatable")
    g.add_argument("--criterion", choices=LazyChoices("edgeprune.prune.criteria", "CRITERIA"), default="l1",
                   metavar="CRITERION", help="%(choices)s (default l1)")
    g.add_argument("--rounds", type=int, default=1, help="prune/finetune rounds")
    g.add_argument("--round-to", type=int, default=1, help="keep channel counts multiples of N")
    g.add_argument("--ignore", action="append", default=[], metavar="LAYER",
                   help="layer never pruned; repeatable")
    g.add_argument("--max-drop", type=float, default=2.0,
                   help="stop when validation accuracy drops more than this many points")
    g.add_argument("--checkpoint", help="resumable checkpoint file")
    g = p.add_argument_group("other methods")
    g.add_argument("--sparsity", type=float, default=0.5, help="unstructured: weights zeroed")
    g.add_argument("--scope", choices=("layer", "global"), default="layer")
    g.add_argument("--blocks", type=int, default=1, help="blocks: how many to remove")
    g.add_argument("--energy", type=float, default=0.9, help="lowrank: retained SVD energy")
    g = p.add_argument_group("training")
    g.add_argument("--train-epochs", type=int, default=30, help="for zoo models (default 30)")
    g.add_argument("--finetune-epochs", type=int, default=10)
    g.add_argument("--slimming-epochs", type=int, default=0,
                   help="with --criterion bn_scale: L1-regularised training on BN scales first")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from edgeprune.prune.api import prune

    if args.out is None and args.onnx is None:
        raise PruneError("nothing to write: give --out and/or --onnx")
    outcome = prune(
        args.model, args.out, method=args.method,
        ratio=dict(args.layer_ratio) if args.layer_ratio else args.ratio,
        criterion=args.criterion, rounds=args.rounds, round_to=args.round_to,
        ignored=tuple(args.ignore), max_drop=args.max_drop / 100, sparsity=args.sparsity,
        scope=args.scope, blocks=args.blocks, energy=args.energy, data=args.data,
        train_epochs=args.train_epochs, finetune_epochs=args.finetune_epochs,
        slimming_epochs=args.slimming_epochs,
        checkpoint=args.checkpoint, onnx=args.onnx, progress=not args.quiet)
    print(outcome.report.table())
    print(f"test accuracy {outcome.before.accuracy:.2%} -> {outcome.after.accuracy:.2%}")
    if args.report:
        write_text_atomic(args.report, json.dumps(outcome.to_dict(), indent=1))
    return 0
