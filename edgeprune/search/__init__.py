"""Hardware-aware per-layer sparsity search (Optuna; every candidate measured on the device).

Importing a submodule rebinds `edgeprune.search` from the lazy function in `edgeprune/__init__.py`
to this package, so the package itself is callable: `edgeprune.search(...)` works either way.
"""
from __future__ import annotations

import sys
import types

from edgeprune.search.api import SearchResult, search

__all__ = ["SearchResult", "search"]


class _CallablePackage(types.ModuleType):
    def __call__(self, *args, **kwargs) -> SearchResult:
        return search(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
