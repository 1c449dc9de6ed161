"""argparse choices read from a module that is slow to import (torch, onnxruntime, optuna).

The module loads when argparse first needs the names: to check a value given on the command line,
or to print the subcommand's help; building the parser does not load it. Give the option a
`metavar` (else argparse lists the choices when the option is added) and `%(choices)s` in its help."""
from __future__ import annotations

import importlib
from collections.abc import Iterator


class LazyChoices:
    """The names of `module.attribute` (a tuple or a dict's keys), sorted, loaded on first use;
    more (module, attribute) pairs after the first add their names too."""

    def __init__(self, module: str, attribute: str, *more: tuple[str, str]) -> None:
        self.sources = ((module, attribute), *more)
        self._names: list[str] | None = None

    def _load(self) -> list[str]:
        if self._names is None:
            self._names = sorted({name for module, attribute in self.sources
                                  for name in getattr(importlib.import_module(module), attribute)})
        return self._names

    def __contains__(self, name: object) -> bool:
        return name in self._load()

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())
