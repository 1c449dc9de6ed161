"""Task references on the command line: `FILE.py:NAME` or `package.module:NAME` names a Task (or
a function of no arguments returning one) in a Python file or module; a zoo name is a ready-made
task."""
from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from edgeprune.errors import TaskError
from edgeprune.models import zoo
from edgeprune.task import Task, zoo_task


def is_reference(text: str) -> bool:
    """Whether `text` names a task in a Python file or module (`FILE.py:NAME`, `pkg.mod:NAME`)."""
    source, sep, attribute = str(text).rpartition(":")
    return bool(sep and source and attribute.isidentifier()
                and (source.endswith(".py") or all(p.isidentifier() for p in source.split("."))))


def _module(source: str):
    """The module of a task reference: a Python file (run under a private name) or an importable
    module; TaskError when it is missing or fails to import."""
    try:
        if not source.endswith(".py"):
            return importlib.import_module(source)
        path = Path(source).resolve()
        if not path.is_file():
            raise TaskError(f"task file {source}: no such file")
        name = f"edgeprune_task_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    except TaskError:
        raise
    except ModuleNotFoundError as exc:
        if exc.name and (source == exc.name or source.startswith(exc.name + ".")):
            raise TaskError(f"task module {source!r} not found (is it on PYTHONPATH?)") from exc
        raise TaskError(f"task {source}: importing it failed: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:
        raise TaskError(f"task {source}: importing it failed: {type(exc).__name__}: {exc}") from exc


def load_task(reference: str) -> Task:
    """The Task named by `FILE.py:NAME` or `pkg.module:NAME` (a Task, or a function of no
    arguments returning one), or a ready-made zoo task for a zoo model name."""
    if reference in zoo.ZOO:
        return zoo_task(reference)
    if not is_reference(reference):
        raise TaskError(f"{reference!r} is not a task reference; use FILE.py:NAME or "
                        "package.module:NAME, or a zoo model name")
    source, _, attribute = reference.rpartition(":")
    module = _module(source)
    if not hasattr(module, attribute):
        defined = sorted(n for n in vars(module) if not n.startswith("_"))
        raise TaskError(f"task {source} has no attribute {attribute!r}; it defines: "
                        f"{', '.join(defined) or 'nothing'}")
    found = getattr(module, attribute)
    if callable(found) and not isinstance(found, Task):
        try:
            found = found()
        except TaskError:
            raise
        except Exception as exc:
            raise TaskError(f"task {reference}: calling it raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(found, Task):
        raise TaskError(f"task {reference} is a {type(found).__name__}, not an edgeprune.task.Task")
    return found
