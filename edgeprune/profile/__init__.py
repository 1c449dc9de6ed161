"""The profile stage: devices, the protocol client, the results store, reports.

`edgeprune.profile(...)` profiles a compiled model (edgeprune.profile.api.profile). The package
itself is callable, so that `edgeprune.profile` stays that function once the package is imported.
"""
from __future__ import annotations

import sys
import types


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from edgeprune.profile.api import profile

        return profile(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
