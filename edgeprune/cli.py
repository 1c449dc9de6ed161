"""The `edgeprune` command line: one subcommand per stage, each registered by its own module."""
from __future__ import annotations

import argparse
import importlib
import sys

from edgeprune.errors import EdgepruneError

# Modules that define `register(subparsers)`; each adds one or more subcommands.
COMMAND_MODULES = (
    "edgeprune.compile.commands",
    "edgeprune.models.commands",
    "edgeprune.profile.commands",
    "edgeprune.quantize.commands",
    "edgeprune.prune.commands",
    "edgeprune.search.commands",
    "edgeprune.targets",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgeprune",
        description="Prune, quantize, compile and profile neural networks for Arm devices.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except EdgepruneError as exc:
        print(f"edgeprune {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"edgeprune {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
