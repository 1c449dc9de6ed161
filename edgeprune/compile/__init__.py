"""Compile stage: a model in, a self-contained firmware folder out (`edgeprune.compile(...)`)."""
from edgeprune._stage import make_stage

make_stage(__name__, "edgeprune.compile.api", "compile_model", ('CompiledModel',))
