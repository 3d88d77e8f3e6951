"""Resolve ``"scope::name"`` references to mmengine registries, lazily."""
from __future__ import annotations

import functools
import importlib
import importlib.util
from types import ModuleType
from typing import TYPE_CHECKING

from cplugins import import_hooks
from cplugins.spec import REGISTRY_ATTRIBUTES, RegistryRef

if TYPE_CHECKING:
    from mmengine.registry import Registry


def scope_installed(ref: RegistryRef) -> bool:
    """Whether the package owning ``ref`` is importable (checked without importing it)."""
    return importlib.util.find_spec(ref.package) is not None


def resolve(ref: RegistryRef) -> Registry:
    """The registry object of ``ref``; imports ``<package>.registry`` (light) only."""
    module = importlib.import_module(f"{ref.package}.registry")
    return getattr(module, REGISTRY_ATTRIBUTES[ref.name])


def registry_label(registry: Registry) -> str:
    return f"{registry.scope}::{registry.name}"


def visible_names(registry: Registry) -> set[str]:
    """Names a lookup in ``registry`` can reach: its own, its ancestors' and children's."""
    names: set[str] = set()
    node = registry
    while node is not None:
        names.update(node.module_dict)
        node = node.parent
    stack = list(registry.children.values())
    while stack:
        child = stack.pop()
        names.update(child.module_dict)
        stack.extend(child.children.values())
    return names


def _activate_pending_before_lookups(module: ModuleType) -> None:
    registry_class = module.Registry
    if getattr(registry_class.get, "cplugins_pending", False):
        return
    original = registry_class.get

    @functools.wraps(original)
    def get(self, key):
        from cplugins.manager import get_manager

        get_manager().activate_pending()
        return original(self, key)

    get.cplugins_pending = True
    registry_class.get = get


def arm() -> None:
    """Before any registry lookup, activate plugin packages that asked for it while discovery
    ran (:meth:`cplugins.manager.PluginManager.activate_pending`)."""
    import_hooks.when_imported("mmengine.registry.registry", _activate_pending_before_lookups)
