"""Run a callback around the import of a named module, without importing it now.

Used by :mod:`cplugins.compat` so that each fix costs nothing until the module it
fixes is imported (``cplugins list`` must not import torch).
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import threading
from collections.abc import Callable
from types import ModuleType

Callback = Callable[[ModuleType], None]

_before: dict[str, list[Callback]] = {}
_after: dict[str, list[Callback]] = {}
_lock = threading.RLock()


class _WrappingLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader, name: str):
        self._loader = loader
        self._name = name

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        for callback in _before.pop(self._name, []):
            callback(module)
        self._loader.exec_module(module)
        for callback in _after.pop(self._name, []):
            callback(module)

    def __getattr__(self, item):  # get_source, get_filename, is_package, ...
        return getattr(self._loader, item)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname not in _before and fullname not in _after:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _WrappingLoader(spec.loader, fullname)
        return spec


_FINDER = _Finder()


def _install() -> None:
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def before_import(name: str, callback: Callback) -> None:
    """Call ``callback(module)`` just before ``name`` executes; never if already imported."""
    with _lock:
        if name in sys.modules:
            return
        _install()
        _before.setdefault(name, []).append(callback)


def when_imported(name: str, callback: Callback) -> None:
    """Call ``callback(module)`` once ``name`` is imported (now, if it already is)."""
    with _lock:
        module = sys.modules.get(name)
        if module is not None:
            callback(module)
            return
        _install()
        _after.setdefault(name, []).append(callback)
