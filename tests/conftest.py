"""Shared fixtures: compiled models are cached per test session (compiling costs seconds)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from edgeprune.compile.api import CompiledModel, compile_model


@pytest.fixture(scope="session")
def compiled(tmp_path_factory) -> Callable[..., CompiledModel]:
    """compiled(model, board="mps2-an386", backend="llvm") -> CompiledModel, compiled once."""
    cache: dict[tuple, CompiledModel] = {}

    def get(model: str | Path, board: str = "mps2-an386", backend: str = "llvm") -> CompiledModel:
        key = (str(model), board, backend)
        if key not in cache:
            out = tmp_path_factory.mktemp("compiled") / f"{Path(str(model)).stem}-{board}-{backend}"
            cache[key] = compile_model(model, board, out, backend=backend)
        return cache[key]

    return get
