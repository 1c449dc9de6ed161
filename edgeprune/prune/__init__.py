"""Pruning stage: structured channels, unstructured, block removal, low rank, iterative schedule (`edgeprune.prune(...)`)."""
from edgeprune._stage import make_stage

make_stage(__name__, "edgeprune.prune.api", "prune", ())
