"""Errors of the pruning stage."""
from edgeprune.errors import EdgepruneError


class PruneError(EdgepruneError):
    """Bad pruning input: a ratio out of range, an unknown layer or criterion, an untraceable model."""
