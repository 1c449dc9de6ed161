"""The compiler's identity: what makes two compiles of one model give the same firmware. Cached
measurements are keyed by it, so that a changed kernel lowering is measured again."""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import tvm

from edgeprune.targets import TARGETS_DIR

_COMPILER_DIR = Path(__file__).resolve().parent
_ROOT = TARGETS_DIR.parent


@functools.cache
def compiler_fingerprint() -> str:
    """SHA-256 of edgeprune's compiler sources, the board files and runtime, and TVM's version."""
    digest = hashlib.sha256(tvm.__version__.encode())
    files = sorted(_COMPILER_DIR.rglob("*.py")) + sorted(p for p in TARGETS_DIR.rglob("*") if p.is_file())
    for path in files:
        digest.update(str(path.relative_to(_ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
