"""Collect the benchmark cases every plugin declares (``cplugins_benchmark_cases``; no torch)."""
from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from cplugins.cases import BenchmarkCase
from cplugins.manager import PluginManager, PluginRecord, get_manager


def load_case_module(source: str) -> ModuleType:
    """Import extra hook module ``source``: a ``.py`` file or an importable module name.

    A file is imported as a top-level module with its directory put first on ``sys.path``
    (as ``python FILE`` does), so its cases can name sibling files as import targets, e.g.
    ``"reference_rfa:LiteralRFA"`` next to ``benchmarks/cases.py``.
    """
    if source.endswith(".py"):
        path = Path(source).resolve()
        if not path.is_file():
            raise ValueError(f"--plugin {source!r}: no such file")
        directory = str(path.parent)
        if directory not in sys.path:
            sys.path.insert(0, directory)
        name = path.stem
        module = sys.modules.get(name)
        if module is not None and os.path.realpath(getattr(module, "__file__", "") or "") \
                == str(path):
            return module
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ValueError(f"--plugin {source!r}: cannot be imported as a module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(source)
    except ImportError as exc:
        raise ValueError(f"--plugin {source!r}: not a .py file and not importable ({exc})") \
            from None


def _provider(manager: PluginManager, plugin: object) -> tuple[str, PluginRecord | None]:
    for record in manager.records.values():
        if record.plugin is plugin:
            return record.label, record
    return getattr(plugin, "__file__", None) or getattr(plugin, "__name__", repr(plugin)), None


def collect_cases(extra: list[str] | tuple[str, ...] = (),
                  manager: PluginManager | None = None
                  ) -> tuple[list[BenchmarkCase], dict[str, PluginRecord | None], list[str]]:
    """Every declared case, the plugin record that declared each, and per-plugin errors.

    ``extra`` are hook modules to register for this process too (see
    :func:`load_case_module`). A plugin whose hook raises or returns something other than
    :class:`BenchmarkCase` objects is reported in the error list; the others still count. Two
    providers declaring the same case name is an error naming both.
    """
    manager = manager or get_manager()
    manager.discover()
    for source in extra:
        module = load_case_module(source)
        if not manager.pm.is_registered(module):
            manager.pm.register(module, name=f"bench-extra:{source}")
    cases: dict[str, BenchmarkCase] = {}
    owners: dict[str, PluginRecord | None] = {}
    errors: list[str] = []
    hook = getattr(manager.pm.hook, "cplugins_benchmark_cases", None)
    for impl in (hook.get_hookimpls() if hook is not None else []):
        label, record = _provider(manager, impl.plugin)
        try:
            declared = list(impl.function() or [])
            bad = [c for c in declared if not isinstance(c, BenchmarkCase)]
            if bad:
                raise TypeError(f"cplugins_benchmark_cases() must return BenchmarkCase "
                                f"objects, got {bad[0]!r}")
        except Exception as exc:  # one broken plugin must not hide the other cases
            errors.append(f"{label}: {type(exc).__name__}: {exc}")
            continue
        for case in declared:
            if case.name in cases:
                raise ValueError(f"benchmark case {case.name!r} is declared twice: by "
                                 f"{cases[case.name].provider} and by {label}")
            cases[case.name] = dataclasses.replace(case, provider=label)
            owners[case.name] = record
    return sorted(cases.values(), key=lambda c: c.name), owners, errors
