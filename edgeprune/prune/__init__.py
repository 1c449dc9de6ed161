"""Pruning stage: structured channels, unstructured, block removal, low rank, iterative schedule."""
from edgeprune.prune.api import prune

__all__ = ["prune"]
