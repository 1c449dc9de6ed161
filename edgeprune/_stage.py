"""Stage packages that are also the stage's function: `edgeprune.compile(...)`, `edgeprune.quantize(...)`.

A subpackage import (`import edgeprune.compile.api`) rebinds the attribute `edgeprune.compile` from
the function to the package, so the package itself must be callable. Its public names load on
first use, which keeps `import edgeprune` (and the CLI's start) free of torch and TVM."""
from __future__ import annotations

import importlib
import sys
import types


def make_stage(package: str, api_module: str, function: str, exports: tuple[str, ...] = ()) -> None:
    """Make `package` call `api_module.function`, and resolve `function` and `exports` lazily."""
    public = {function, *exports}

    class _Stage(types.ModuleType):
        def __call__(self, *args, **kwargs):
            return getattr(importlib.import_module(api_module), function)(*args, **kwargs)

        def __getattr__(self, name: str):
            if name in public:
                return getattr(importlib.import_module(api_module), name)
            raise AttributeError(f"module {package!r} has no attribute {name!r}")

    sys.modules[package].__class__ = _Stage
