"""Resolve ``"scope::name"`` references to mmengine registries, lazily."""
from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING

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
