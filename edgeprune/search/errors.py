"""Errors of the search stage."""
from __future__ import annotations

from edgeprune.errors import EdgepruneError


class SearchError(EdgepruneError):
    """A search that cannot start or continue (bad settings, a study that does not match)."""
