"""Find plugins (entry points and built-ins), list them, and register their modules.

Two phases, so that listing stays fast:

* **discover** imports each plugin's hook module (light, no torch) and asks it which
  modules it provides (``cplugins_modules``);
* **activate** imports those modules and registers them into mmengine registries.

``CPLUGINS_LOAD_PLUGINS`` (comma-separated entry-point or distribution names) limits
which installed plugins are discovered; set it to an empty string to load none.
Built-in plugins always load.
"""
from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from cplugins import hookspecs
from cplugins.errors import CPluginsError, PluginConflictError, PluginLoadError
from cplugins.spec import ModuleSpec, RegistryRef

ENTRY_POINT_GROUP = "cplugins"
ENV_LOAD_PLUGINS = "CPLUGINS_LOAD_PLUGINS"
#: hook modules shipped with cplugins, registered exactly like installed plugins
BUILTIN_PLUGINS: tuple[str, ...] = ("cplugins.builtin",)


class CPluginsWarning(UserWarning):
    """A plugin failed to load; the others still load."""


@dataclass
class Registration:
    """Where one module of a plugin went, or why it did not."""

    spec: ModuleSpec
    registry: RegistryRef
    status: str = "declared"  # declared | registered | skipped | failed
    reason: str = ""


@dataclass
class PluginRecord:
    """One plugin as ``cplugins list`` shows it."""

    name: str
    hook_module: str
    distribution: str
    version: str
    builtin: bool = False
    status: str = "discovered"  # discovered | active | failed
    error: str = ""
    hooks: list[str] = field(default_factory=list)
    specs: list[ModuleSpec] = field(default_factory=list)
    registrations: list[Registration] = field(default_factory=list)
    plugin: ModuleType | None = None

    @property
    def package(self) -> str:
        return self.hook_module.split(".")[0]

    @property
    def label(self) -> str:
        return f"{self.distribution} {self.version}"


def _format_exception(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _requested_plugins() -> set[str] | None:
    value = os.environ.get(ENV_LOAD_PLUGINS)
    if value is None:
        return None
    return {item.strip() for item in value.split(",") if item.strip()}


def _failed_module(name: str, message: str) -> type:
    """A registry entry standing in for a module whose plugin failed: building it raises."""

    def __init__(self, *args, **kwargs):
        raise PluginLoadError(message)

    return type(name, (), {"__init__": __init__, "__doc__": message, "cplugins_failed": True})


class PluginManager:
    """Discovers plugins and registers their modules into mmengine registries."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}
        self.unknown_requested: set[str] = set()
        self._discovered = False
        self._discovering = False
        # (registry label, name) -> (distribution label, target) of what we registered
        self._owners: dict[tuple[str, str], tuple[str, str]] = {}

    # -- discovery -----------------------------------------------------------------------
    def discover(self) -> list[PluginRecord]:
        """Load built-in plugins and the installed entry points (once)."""
        if self._discovered:
            return list(self.records.values())
        self._discovered = True
        self._discovering = True
        try:
            for module_name in BUILTIN_PLUGINS:
                record = PluginRecord(module_name.rsplit(".", 1)[-1], module_name, "cplugins",
                                      _version("cplugins"), builtin=True)
                self._load(record, lambda m=module_name: importlib.import_module(m))
            requested = _requested_plugins()
            seen: set[str] = set()
            for ep in _entry_points():
                dist = ep.dist.name if ep.dist is not None else "?"
                if requested is not None and not {ep.name, dist} & requested:
                    continue
                seen.update({ep.name, dist})
                record = PluginRecord(ep.name, ep.value, dist, ep.dist.version if ep.dist else "?")
                self._load(record, lambda value=ep.value: load_hook_module(value))
            if requested is not None:
                self.unknown_requested = requested - seen
                if self.unknown_requested:
                    available = sorted(ep.name for ep in _entry_points())
                    warnings.warn(
                        f"{ENV_LOAD_PLUGINS} names plugins that are not installed: "
                        f"{', '.join(sorted(self.unknown_requested))}; installed: "
                        f"{', '.join(available) or 'none'}", CPluginsWarning, stacklevel=2)
        finally:
            self._discovering = False
        return list(self.records.values())

    def _load(self, record: PluginRecord, load) -> None:
        key = record.name if record.name not in self.records else record.hook_module
        self.records[key] = record
        try:
            plugin = load()
            self.pm.register(plugin, name=record.hook_module)
            record.plugin = plugin
            record.hooks = sorted(
                impl.name for impl in self.pm.get_hookcallers(plugin) or [])
            specs = self._collect_specs(plugin)
        except Exception as exc:  # one broken plugin must not take the others down
            self._fail(record, exc)
            return
        record.specs = specs
        record.registrations = [Registration(s, r) for s in specs for r in s.registries]

    def _collect_specs(self, plugin: ModuleType) -> list[ModuleSpec]:
        impls = [i for i in self.pm.hook.cplugins_modules.get_hookimpls() if i.plugin is plugin]
        specs: list[ModuleSpec] = []
        for impl in impls:
            result = impl.function()
            for spec in result or []:
                if not isinstance(spec, ModuleSpec):
                    raise TypeError(
                        f"cplugins_modules() must return ModuleSpec objects, got {spec!r}")
                specs.append(spec)
        return specs

    def _fail(self, record: PluginRecord, exc: BaseException) -> None:
        record.status = "failed"
        record.error = _format_exception(exc)
        warnings.warn(f"cplugins: plugin {record.name!r} ({record.label}) failed to load: "
                      f"{record.error}", CPluginsWarning, stacklevel=3)

    # -- activation ----------------------------------------------------------------------
    def activate_all(self) -> list[PluginRecord]:
        """Register the modules of every discovered plugin."""
        for record in self.discover():
            self.activate(record)
        return list(self.records.values())

    def activate_package(self, package: str) -> PluginRecord | None:
        """Activate the plugin whose hook module lives in import package ``package``.

        Called from a plugin's ``__init__`` (so ``custom_imports`` works). A single-module
        plugin executed by discovery itself calls it too: then it does nothing.
        """
        if self._discovering:
            return None
        self.discover()
        record = self._record_for_package(package)
        if record is None:  # excluded by CPLUGINS_LOAD_PLUGINS but imported explicitly
            for ep in _entry_points():
                if ep.value.split(".")[0] == package:
                    record = PluginRecord(ep.name, ep.value, ep.dist.name if ep.dist else "?",
                                          ep.dist.version if ep.dist else "?")
                    self._load(record, lambda value=ep.value: load_hook_module(value))
                    break
        if record is None:
            raise CPluginsError(
                f"package {package!r} called cplugins.activate() but no installed distribution "
                f"declares it under the {ENTRY_POINT_GROUP!r} entry-point group; installed "
                f"plugins: {', '.join(sorted(self.records)) or 'none'}")
        return self.activate(record)

    def _record_for_package(self, package: str) -> PluginRecord | None:
        for record in self.records.values():
            if record.package == package:
                return record
        return None

    def activate(self, record: PluginRecord) -> PluginRecord:
        """Import the record's modules and register them; idempotent."""
        if record.status != "discovered":
            return record
        record.status = "active"
        for registration in record.registrations:
            self._register(record, registration)
        failures = [r for r in record.registrations if r.status == "failed"]
        if failures:
            record.status = "failed"
            record.error = "; ".join(f"{r.spec.name}: {r.reason}" for r in failures)
            warnings.warn(f"cplugins: plugin {record.name!r} ({record.label}) failed to "
                          f"load: {record.error}", CPluginsWarning, stacklevel=2)
        return record

    def _register(self, record: PluginRecord, registration: Registration) -> None:
        from cplugins import registries

        spec, ref = registration.spec, registration.registry
        if not registries.scope_installed(ref):
            registration.status = "skipped"
            registration.reason = f"{ref.package} is not installed"
            return
        registry = registries.resolve(ref)
        registry.import_from_location()  # stock modules first, so clashes with them show
        try:
            cls = import_target(spec.target)
        except Exception as exc:
            registration.status = "failed"
            registration.reason = _format_exception(exc)
            message = (f"{spec.name} is provided by plugin {record.name!r} ({record.label}), "
                       f"which failed to load: {registration.reason}")
            if spec.name not in registry.module_dict:
                registry.register_module(name=spec.name, module=_failed_module(spec.name, message))
            return
        self._check_conflict(registry, spec, cls, record)
        if registry.module_dict.get(spec.name) is not cls:
            registry.register_module(name=spec.name, module=cls, force=True)
        self._owners[(str(ref), spec.name)] = (record.label, spec.target)
        registration.status = "registered"

    def _check_conflict(self, registry, spec: ModuleSpec, cls: type,
                        record: PluginRecord) -> None:
        existing = registry.module_dict.get(spec.name)
        if existing is None or existing is cls or getattr(existing, "cplugins_failed", False):
            return
        label = f"{registry.scope}::{registry.name}"
        owner, target = self._owners.get(
            (label, spec.name), (_distribution_of(existing), _qualname(existing)))
        raise PluginConflictError(
            f"{spec.name!r} in registry {label} is provided by two distributions: "
            f"{owner} ({target}) and {record.label} ({spec.target}). Uninstall one, or "
            f"limit what loads with {ENV_LOAD_PLUGINS}=<plugin names>.")

    # -- queries -------------------------------------------------------------------------
    def declared_conflicts(self) -> list[str]:
        """Names two discovered distributions declare for one registry (no import needed)."""
        seen: dict[tuple[str, str], str] = {}
        conflicts = []
        for record in self.records.values():
            for reg in record.registrations:
                key = (str(reg.registry), reg.spec.name)
                if key in seen and seen[key] != record.distribution:
                    conflicts.append(f"{reg.spec.name!r} in {reg.registry}: {seen[key]} and "
                                     f"{record.distribution}")
                seen.setdefault(key, record.distribution)
        return conflicts

    def providers_of(self, name: str) -> list[PluginRecord]:
        """Discovered plugins that declare a module called ``name``."""
        return [r for r in self.records.values() if any(s.name == name for s in r.specs)]


def load_hook_module(value: str) -> ModuleType:
    """Import an entry point's hook module *without* running its package's ``__init__``.

    A plugin package's ``__init__`` activates the plugin (``cplugins.activate``), which must
    happen when a config imports it, not when discovery merely reads its hooks: if discovery
    put the package into ``sys.modules``, a later ``custom_imports`` of it would be a no-op.
    So unless the package is already imported, the hook module is executed detached from it
    (the contract: a hook module imports only ``cplugins``).
    """
    module_name, _, attr = value.partition(":")
    parts = module_name.split(".")
    if len(parts) == 1 or parts[0] in sys.modules:
        module = importlib.import_module(module_name)
    else:
        spec = importlib.util.find_spec(parts[0])
        for depth in range(2, len(parts) + 1):
            if spec is None or not spec.submodule_search_locations:
                spec = None
                break
            spec = importlib.machinery.PathFinder.find_spec(
                ".".join(parts[:depth]), list(spec.submodule_search_locations))
        if spec is None or spec.loader is None:
            raise ModuleNotFoundError(f"entry point {value!r}: no module named {module_name!r}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return getattr(module, attr) if attr else module


def _entry_points() -> list[metadata.EntryPoint]:
    eps = metadata.entry_points(group=ENTRY_POINT_GROUP)
    unique = {}
    for ep in eps:  # the same dist can be seen twice on sys.path; keep the first
        unique.setdefault((ep.name, ep.value), ep)
    return sorted(unique.values(), key=lambda ep: ep.name)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        from cplugins import __version__

        return __version__


def import_target(target: str) -> Any:
    """The object named by ``"package.module:attr"`` (a ModuleSpec target, a bench hook)."""
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ImportError(f"target {target!r}: module {module_name!r} has no {attr!r}") from None


def _qualname(obj: object) -> str:
    return f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', obj)}"


def _distribution_of(obj: object) -> str:
    top = (getattr(obj, "__module__", "") or "").split(".")[0]
    dists = metadata.packages_distributions().get(top, [])
    if not dists:
        return top or "?"
    return f"{dists[0]} {_version(dists[0])}"


_MANAGER: PluginManager | None = None


def get_manager() -> PluginManager:
    """The process-wide manager."""
    global _MANAGER
    if _MANAGER is None:
        _MANAGER = PluginManager()
    return _MANAGER
