"""Command-line options shared by compile, prune and search: an input shape, and loading the
user's own model file."""
from __future__ import annotations

import argparse

MODEL_HELP = ("a task (FILE.py:NAME or package.module:NAME, see README 'Your own model'), a zoo model "
              "name (a ready-made task, trained here on digits first) or a .pt file saved by edgeprune")


def parse_shape(text: str) -> tuple[int, ...]:
    """An --input-shape value: comma-separated integers."""
    try:
        return tuple(int(d) for d in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--input-shape wants comma-separated integers, got {text!r}") from None


def add_model_file_options(p: argparse.ArgumentParser) -> None:
    """--trust-pickle and --input-shape: the explicit way to load a whole pickled torch model."""
    g = p.add_argument_group("a pickled model file (better: a task file)")
    g.add_argument("--trust-pickle", action="store_true",
                   help="load a .pt holding a whole pickled nn.Module (unpickling runs code from the "
                   "file: only for files you trust); needs --input-shape")
    g.add_argument("--input-shape", type=parse_shape, metavar="1,C,H,W",
                   help="input shape of a pickled model, e.g. 1,1,8,8")
