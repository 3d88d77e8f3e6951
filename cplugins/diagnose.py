"""Turn mmengine's "X is not in the registry" into an answer: close names, plugins."""
from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Iterator
from contextlib import contextmanager

from cplugins.errors import UnknownTypeError
from cplugins.manager import get_manager
from cplugins.spec import REGISTRY_ATTRIBUTES, SCOPE_PACKAGES

_MISSING = re.compile(
    r"(?P<name>[\w.]+) is not in the (?:(?P<scope>\w+)::)?(?P<registry>\w+) registry")


def _find_registry(scope: str | None, name: str):
    attr = REGISTRY_ATTRIBUTES.get(name)
    package = SCOPE_PACKAGES.get(scope or "mmengine")
    if attr is None or package is None:
        return None
    try:
        return getattr(importlib.import_module(f"{package}.registry"), attr)
    except (ImportError, AttributeError):
        return None


def explain_unknown_type(type_name: str, scope: str | None, registry_name: str) -> str:
    """A message for an unknown ``type``: the closest names and what plugins could help."""
    from cplugins.registries import visible_names

    short = type_name.split(".")[-1]
    label = f"{scope}::{registry_name}" if scope else registry_name
    lines = [f"type {type_name!r} is not in the {label} registry."]
    registry = _find_registry(scope, registry_name)
    if registry is not None:
        registry.import_from_location()
        close = difflib.get_close_matches(short, sorted(visible_names(registry)), n=5, cutoff=0.5)
        if close:
            lines.append(f"Closest registered names: {', '.join(close)}.")
    manager = get_manager()
    manager.discover()
    for record in manager.providers_of(short):
        if record.status == "failed":
            lines.append(f"{short} is provided by plugin {record.name!r} ({record.label}), which "
                         f"failed to load: {record.error}")
        elif record.status == "discovered":
            lines.append(f"{short} is provided by plugin {record.name!r} ({record.label}), which "
                         f"is installed but not imported: add custom_imports=dict(imports="
                         f"['{record.package}']) (or ['cplugins.all']) to the config.")
    plugins = [f"{r.name} ({r.label}, {r.status})" for r in manager.records.values()
               if not r.builtin]
    lines.append(f"Installed plugins: {', '.join(plugins) or 'none'}.")
    return "\n".join(lines)


@contextmanager
def explain_unknown_types() -> Iterator[None]:
    """Re-raise mmengine's unknown-type KeyError as :class:`UnknownTypeError`, explained."""
    try:
        yield
    except KeyError as exc:
        if isinstance(exc, UnknownTypeError):
            raise
        match = _MISSING.search(str(exc.args[0]) if exc.args else "")
        if match is None:
            raise
        message = explain_unknown_type(match["name"], match["scope"], match["registry"])
        raise UnknownTypeError(message) from exc
