"""Run a callback once a named module is imported, without importing it now (wrapt's post-import
hooks).

Used by :mod:`cplugins.compat`, :mod:`cplugins.registries` and :mod:`cplugins.diagnose` so that
each fix or patch costs nothing until the module it concerns is imported (``cplugins list``
must not import torch).
"""
from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

Callback = Callable[[ModuleType], None]


def when_imported(name: str, callback: Callback) -> None:
    """Call ``callback(module)`` once, when module ``name`` has been imported (now, if it
    already is)."""
    import wrapt  # ~20 ms: only once something is watched

    wrapt.register_post_import_hook(callback, name)
