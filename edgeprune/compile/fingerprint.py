"""The compiler's identity: what makes two compiles of one model give the same firmware. Cached
measurements are keyed by it, so that a changed kernel lowering is measured again."""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import tvm

from edgeprune.targets import TARGETS_DIR

_COMPILER_DIR = Path(__file__).resolve().parent
_PACKAGE = _COMPILER_DIR.parent
# Sources outside compile/ that shape the graph a search measures: the QDQ preparation and the
# torch -> ONNX export.
GRAPH_SOURCES = ("quantize/prepare.py", "models/export.py")


def _sources() -> list[tuple[str, Path]]:
    """(name, path) of every file the fingerprint covers, each named relative to its folder."""
    groups = [("compile", _COMPILER_DIR, sorted(_COMPILER_DIR.rglob("*.py"))),
              ("edgeprune", _PACKAGE, [_PACKAGE / source for source in GRAPH_SOURCES]),
              ("targets", TARGETS_DIR, sorted(p for p in TARGETS_DIR.rglob("*") if p.is_file()))]
    return [(f"{label}/{path.relative_to(base)}", path) for label, base, paths in groups for path in paths]


@functools.cache
def compiler_fingerprint() -> str:
    """SHA-256 of edgeprune's compiler sources, the sources that shape the compiled graph, the
    board files and runtime, and TVM's version."""
    digest = hashlib.sha256(tvm.__version__.encode())
    for name, path in _sources():
        digest.update(name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
