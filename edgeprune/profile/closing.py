"""A base for objects used in `with` blocks that end by calling their close()."""
from __future__ import annotations

from typing import Self


class Closing:
    def close(self) -> None:
        """Releases what the object holds; subclasses override it."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
