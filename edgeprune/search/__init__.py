"""Hardware-aware per-layer sparsity search, every candidate measured on the device."""
from edgeprune._stage import make_stage

make_stage(__name__, "edgeprune.search.api", "search", ('SearchResult',))
