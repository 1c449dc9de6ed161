"""Hardware-aware per-layer sparsity search (Optuna; every candidate measured on the device)."""
from __future__ import annotations

from edgeprune.search.api import SearchResult, search

__all__ = ["SearchResult", "search"]
