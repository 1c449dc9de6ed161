"""What names an artefact the stages pass on: a model file's content hash (the compile stage writes
it into the firmware's model descriptor, the results store keys records by it)."""
from __future__ import annotations

import hashlib
from pathlib import Path


def content_hash(path: Path) -> str:
    """SHA-256 of a model file's bytes: the key that names a model in the store."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
