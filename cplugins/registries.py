"""Resolve ``"scope::name"`` references to mmengine registries, lazily."""
from __future__ import annotations

import functools
import importlib
import importlib.util
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from cplugins import import_hooks
from cplugins.spec import REGISTRY_ATTRIBUTES, SCOPE_PACKAGES, RegistryRef

if TYPE_CHECKING:
    from mmengine.registry import Registry

    from cplugins.manager import PluginManager


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


#: scopes whose base classes carry a library's own API (a ClsHead's loss(feats, data_samples)
#: is not a BaseDecodeHead's loss(inputs, batch_data_samples, train_cfg))
TASK_SCOPES: tuple[str, ...] = ("mmdet", "mmpretrain", "mmseg")


@dataclass(frozen=True)
class ScopeMismatch:
    """A module whose base class belongs to another library than the scope it registers
    into: ``expected`` is the scope of that base."""

    message: str
    expected: str


def scope_mismatch(cls: Any, ref: RegistryRef) -> ScopeMismatch | None:
    """Whether ``cls`` subclasses only other libraries' bases (of :data:`TASK_SCOPES`) while
    registering into ``ref`` (a scope of those libraries); None when it fits (or no rule)."""
    if ref.scope not in TASK_SCOPES or not isinstance(cls, type):
        return None
    scope_of = {package: scope for scope, package in SCOPE_PACKAGES.items()
                if scope in TASK_SCOPES}
    bases = [(scope_of[top], base) for base in cls.__mro__[1:]
             if (top := (getattr(base, "__module__", "") or "").split(".")[0]) in scope_of]
    if not bases or any(scope == ref.scope for scope, _ in bases):
        return None
    scope, base = bases[0]
    return ScopeMismatch(
        f"{cls.__name__} subclasses {scope}'s {base.__name__} ({base.__module__}) but registers "
        f"into {ref}: {ref.scope}'s models and configs do not use {scope}'s API, so it builds "
        f"there but fails or computes something else when used", scope)


def _activate_pending_before_lookups(manager: PluginManager, module: ModuleType) -> None:
    registry_class = module.Registry
    if getattr(registry_class.get, "cplugins_pending", False):
        return
    original = registry_class.get

    @functools.wraps(original)
    def get(self, key):
        manager.activate_pending()
        return original(self, key)

    get.cplugins_pending = True
    registry_class.get = get


def arm(manager: PluginManager) -> None:
    """Before any registry lookup, activate plugin packages that asked for it while discovery
    ran (:meth:`cplugins.manager.PluginManager.activate_pending`)."""
    import_hooks.when_imported("mmengine.registry.registry",
                               functools.partial(_activate_pending_before_lookups, manager))
