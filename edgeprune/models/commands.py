"""`edgeprune zoo`: the ready-made models, their size and their default data."""
from __future__ import annotations

import argparse


def _zoo(args: argparse.Namespace) -> int:
    from edgeprune.models.catalog import entries, table

    print(table(entries()))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "zoo", help="list the zoo models (compile, quantize, prune and search take their names)",
        description="List the zoo models: the architecture each reproduces, its input shape, MACs and "
                    "parameters per inference (BatchNorm folded), and the data set prune, quantize and "
                    "search use by default.")
    p.set_defaults(handler=_zoo)
