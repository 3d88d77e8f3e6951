"""The core's own hook module, registered like an installed plugin when the manager starts.

cplugins' optional parts register themselves the same way, through entry points of the
``cplugins`` distribution: ``cplugins.training.plugin``, ``cplugins.templates.plugin``,
``cplugins.tune.plugin``, ``cplugins.bench.plugin``, ``cplugins.data.plugin``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from cplugins import diagnose, registries
from cplugins.hookspecs import hookimpl
from cplugins.spec import ModuleSpec

if TYPE_CHECKING:
    from cplugins.manager import PluginManager


@hookimpl
def cplugins_startup(manager: PluginManager) -> None:
    """Explain unknown types in ``Registry.build`` and activate pending plugin packages before
    registry lookups, from when mmengine's registry module is imported."""
    diagnose.arm()
    registries.arm(manager)


@hookimpl
def cplugins_modules() -> list[ModuleSpec]:
    return [ModuleSpec("PluginLockHook", "cplugins.lock_hook:PluginLockHook", "hook")]
