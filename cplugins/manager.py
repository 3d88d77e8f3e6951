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

from cplugins import __version__, hookspecs, versions
from cplugins.errors import (
    CPluginsError,
    PluginConflictError,
    PluginIncompatibleError,
    PluginLoadError,
)
from cplugins.import_cost import ImportCost, measure_import
from cplugins.spec import ModuleSpec, RegistryRef

ENTRY_POINT_GROUP = "cplugins"
ENV_LOAD_PLUGINS = "CPLUGINS_LOAD_PLUGINS"
#: the core's own hook module, registered like an installed plugin when the manager starts;
#: cplugins' optional parts are entry points of the ``cplugins`` distribution (pyproject.toml)
BUILTIN_PLUGINS: tuple[str, ...] = ("cplugins.builtin",)
#: the distribution whose entry points are built-in: always loaded, whatever
#: ``CPLUGINS_LOAD_PLUGINS`` says (they carry the CLI's commands and cplugins' own modules)
OWN_DISTRIBUTION = "cplugins"


class CPluginsWarning(UserWarning):
    """A plugin failed to load; the others still load."""


@dataclass
class Registration:
    """Where one module of a plugin went, or why it did not."""

    spec: ModuleSpec
    registry: RegistryRef
    status: str = "declared"  # declared | registered | skipped | failed | conflict
    reason: str = ""


@dataclass
class PluginRecord:
    """One plugin as ``cplugins list`` shows it."""

    name: str
    hook_module: str
    distribution: str
    version: str
    builtin: bool = False
    status: str = "discovered"  # discovered | active | failed | incompatible
    error: str = ""
    hooks: list[str] = field(default_factory=list)
    specs: list[ModuleSpec] = field(default_factory=list)
    registrations: list[Registration] = field(default_factory=list)
    plugin: ModuleType | None = None
    #: what importing the hook module cost (a light one: well under a second, no torch)
    import_cost: ImportCost | None = None
    #: stack requirements the installed versions do not meet (``cplugins.versions``)
    version_problems: list = field(default_factory=list)
    settled: bool = False  # activation ran (modules registered, or stand-ins for them)

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


def _stand_in(name: str, message: str, error: type[CPluginsError] = PluginLoadError) -> type:
    """A registry entry standing in for a module that cannot be used: building it raises.

    Registered for modules whose plugin failed or is incompatible, and for names two
    providers claim, so that a config using the name fails with the reason and the others
    are not affected.
    """

    def __init__(self, *args, **kwargs):
        raise error(message)

    return type(name, (), {"__init__": __init__, "__doc__": message, "cplugins_failed": True,
                           "cplugins_error": error.__name__})


class PluginManager:
    """Discovers plugins and registers their modules into mmengine registries."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        # plugins that bring hook specifications add them when they are registered
        self.pm.hook.cplugins_add_hookspecs.call_historic(kwargs=dict(pluginmanager=self.pm))
        self.records: dict[str, PluginRecord] = {}
        self._started = False
        self.unknown_requested: set[str] = set()
        self._discovered = False
        self._discovering = False
        # packages whose __init__ asked for activation while discovery ran (a hook module
        # that imports its own package): activated once discovery is over (activate_pending)
        self._deferred: list[str] = []
        # (registry label, name) -> (distribution label, target) of what we registered
        self._owners: dict[tuple[str, str], tuple[str, str]] = {}

    # -- discovery -----------------------------------------------------------------------
    def start(self) -> None:
        """Register the built-in hook modules and run their ``cplugins_startup`` (once)."""
        if self._started:
            return
        self._started = True
        for module_name in BUILTIN_PLUGINS:
            record = PluginRecord(module_name.rsplit(".", 1)[-1], module_name, OWN_DISTRIBUTION,
                                  _version(OWN_DISTRIBUTION),
                                  builtin=True)
            self._load(record, lambda m=module_name: importlib.import_module(m))
        self.pm.hook.cplugins_startup.call_historic(kwargs=dict(manager=self))

    def discover(self) -> list[PluginRecord]:
        """Load the built-in plugins and the installed entry points (once)."""
        if self._discovered:
            return list(self.records.values())
        self.start()
        self._discovered = True
        self._discovering = True
        try:
            requested = _requested_plugins()
            seen: set[str] = set()
            for ep in _entry_points():
                dist = ep.dist.name if ep.dist is not None else "?"
                own = dist == OWN_DISTRIBUTION
                if requested is not None and not own and not {ep.name, dist} & requested:
                    continue
                if not own:
                    seen.update({ep.name, dist})
                record = _record_of(ep)
                record.builtin = own
                self._load(record, lambda value=ep.value: load_hook_module(value),
                           None if own else ep.dist)
            if requested is not None:
                self.unknown_requested = requested - seen
                if self.unknown_requested:
                    available = sorted(ep.name for ep in _entry_points()
                                       if ep.dist is None or ep.dist.name != OWN_DISTRIBUTION)
                    warnings.warn(
                        f"{ENV_LOAD_PLUGINS} names plugins that are not installed: "
                        f"{', '.join(sorted(self.unknown_requested))}; installed: "
                        f"{', '.join(available) or 'none'}", CPluginsWarning, stacklevel=2)
        finally:
            self._discovering = False
        return list(self.records.values())

    def _load(self, record: PluginRecord, load, dist: metadata.Distribution | None = None
              ) -> None:
        key = record.name if record.name not in self.records else record.hook_module
        self.records[key] = record
        try:
            plugin, record.import_cost = measure_import(load)
            self.pm.register(plugin, name=record.hook_module)
            record.plugin = plugin
            record.hooks = sorted(
                impl.name for impl in self.pm.get_hookcallers(plugin) or [])
            specs = self._collect_specs(plugin, record)
        except Exception as exc:  # one broken plugin must not take the others down
            self._fail(record, exc)
            return
        finally:
            if record.import_cost is not None and not record.import_cost.light:
                warnings.warn(
                    f"cplugins: the hook module {record.hook_module!r} of plugin "
                    f"{record.name!r} ({record.label}) {record.import_cost}; every "
                    f"`cplugins list` pays for it. A hook module should import only cplugins: "
                    f"move the heavy imports into the modules its ModuleSpec targets name "
                    f"(imported on activation).", CPluginsWarning, stacklevel=3)
        record.specs = specs
        record.registrations = [Registration(s, r) for s in specs for r in s.registries]
        if dist is not None:
            record.version_problems = versions.version_problems(dist)
            if record.version_problems:
                record.status = "incompatible"
                record.error = versions.describe(record.label, record.version_problems)
                warnings.warn(f"cplugins: plugin {record.name!r}: {record.error}",
                              CPluginsWarning, stacklevel=3)

    def _collect_specs(self, plugin: ModuleType, record: PluginRecord) -> list[ModuleSpec]:
        impls = [i for i in self.pm.hook.cplugins_modules.get_hookimpls() if i.plugin is plugin]
        specs: list[ModuleSpec] = []
        for impl in impls:
            try:
                result = impl.function()
            except ValueError as exc:  # a ModuleSpec refused its arguments
                raise ValueError(f"cplugins_modules() of {record.hook_module}: {exc}") from exc
            for spec in result or []:
                if not isinstance(spec, ModuleSpec):
                    raise TypeError(
                        f"cplugins_modules() of {record.hook_module} must return a list of "
                        f"cplugins.ModuleSpec, got {spec!r}")
                specs.append(spec)
        return specs

    def _fail(self, record: PluginRecord, exc: BaseException) -> None:
        record.status = "failed"
        record.error = _format_exception(exc)
        warnings.warn(f"cplugins: plugin {record.name!r} ({record.label}) failed to load: "
                      f"{record.error}", CPluginsWarning, stacklevel=3)

    # -- activation ----------------------------------------------------------------------
    def activate_all(self) -> list[PluginRecord]:
        """Register the modules of every discovered plugin.

        Problems stay with the plugin that has them: a failed or incompatible plugin's
        modules, and names two providers claim, are refused when a config uses them.
        """
        for record in self.discover():
            self.activate(record, strict=False)
        self.activate_pending()
        return list(self.records.values())

    def activate_package(self, package: str) -> PluginRecord | None:
        """Activate the plugin whose hook module lives in import package ``package``.

        Called from a plugin's ``__init__`` (so ``custom_imports`` works). While discovery
        runs (a hook module importing its own package) the request is deferred until it ends.
        Raises :class:`PluginIncompatibleError` when the plugin's version ranges do not hold.
        """
        if self._discovering:
            self._deferred.append(package)
            return None
        self.discover()
        self.activate_pending()
        return self._activate_package(package, strict=True)

    def _activate_package(self, package: str, strict: bool) -> PluginRecord:
        records = [r for r in self.records.values() if r.package == package]
        if not records:  # excluded by CPLUGINS_LOAD_PLUGINS but imported explicitly
            for ep in _entry_points():
                if ep.value.split(".")[0] == package:
                    record = _record_of(ep)
                    self._load(record, lambda value=ep.value: load_hook_module(value), ep.dist)
                    records = [record]
                    break
        if not records:
            raise CPluginsError(
                f"package {package!r} called cplugins.activate() but no installed distribution "
                f"declares it under the {ENTRY_POINT_GROUP!r} entry-point group; installed "
                f"plugins: {', '.join(sorted(self.records)) or 'none'}")
        for record in records:  # a package may hold several hook modules (cplugins' parts)
            self.activate(record, strict=strict)
        return records[0]

    def activate_pending(self) -> None:
        """Activate the packages that asked for it while discovery ran.

        Such a package is imported by then, so a later ``custom_imports`` of it is a no-op:
        this runs at the next activation, and before any registry lookup (``Registry.get``,
        see :func:`cplugins.registries.arm`), never in a plain ``cplugins list``.
        """
        while self._deferred:
            package = self._deferred.pop(0)
            try:
                self._activate_package(package, strict=False)
            except Exception as exc:  # reported like any plugin failure; the others load
                warnings.warn(f"cplugins: activating {package!r}: {_format_exception(exc)}",
                              CPluginsWarning, stacklevel=2)

    def activate(self, record: PluginRecord, strict: bool = False) -> PluginRecord:
        """Import the record's modules and register them; idempotent.

        An incompatible plugin's modules are not imported: stand-ins that raise its version
        message are registered instead, and with ``strict`` the message is raised now.
        """
        if not record.settled:
            record.settled = True
            if record.status == "incompatible":
                for registration in record.registrations:
                    self._register_stand_in(registration, record.error,
                                            PluginIncompatibleError)
            elif record.status == "discovered":
                self._register_all(record)
        if strict and record.status == "incompatible":
            raise PluginIncompatibleError(record.error)
        return record

    def _register_all(self, record: PluginRecord) -> None:
        record.status = "active"
        for registration in record.registrations:
            self._register(record, registration)
        failures = [r for r in record.registrations if r.status == "failed"]
        unusable = {r.spec.name: r.reason for r in record.registrations
                    if all(o.status == "skipped" for o in record.registrations
                           if o.spec is r.spec)}
        if unusable and not failures and not record.builtin:  # no registry of theirs exists
            record.status = "failed"
            where = {name: ", ".join(str(r.registry) for r in record.registrations
                                     if r.spec.name == name) for name in unusable}
            record.error = "; ".join(f"{name} cannot be used: {reason} (it registers only into "
                                     f"{where[name]})" for name, reason in unusable.items())
            warnings.warn(f"cplugins: plugin {record.name!r} ({record.label}) cannot work here: "
                          f"{record.error}", CPluginsWarning, stacklevel=3)
        if failures:
            record.status = "failed"
            record.error = "; ".join(f"{r.spec.name}: {r.reason}" for r in failures)
            warnings.warn(f"cplugins: plugin {record.name!r} ({record.label}) failed to "
                          f"load: {record.error}", CPluginsWarning, stacklevel=3)

    def _register_stand_in(self, registration: Registration, message: str,
                           error: type[CPluginsError]) -> None:
        from cplugins import registries

        ref = registration.registry
        if not registries.scope_installed(ref):
            return
        registration.status, registration.reason = "failed", message
        registry = registries.resolve(ref)
        try:
            registry.import_from_location()  # a stand-in must not take a stock module's name
        except Exception:  # the stock modules cannot be imported here: nothing to stand in for
            return
        if registration.spec.name not in registry.module_dict:
            registry.register_module(name=registration.spec.name,
                                     module=_stand_in(registration.spec.name, message, error))

    def _register(self, record: PluginRecord, registration: Registration) -> None:
        from cplugins import registries

        spec, ref = registration.spec, registration.registry
        if not registries.scope_installed(ref):
            registration.status = "skipped"
            registration.reason = f"{ref.package} is not installed"
            return
        registry = registries.resolve(ref)
        try:
            # stock modules first, so clashes with them show; where they cannot be imported
            # (mmcv without its compiled ops, say) the target would not import either
            registry.import_from_location()
            cls = import_target(spec.target)
        except Exception as exc:
            registration.status = "failed"
            registration.reason = _format_exception(exc)
            message = (f"{spec.name} is provided by plugin {record.name!r} ({record.label}), "
                       f"which failed to load: {registration.reason}")
            if spec.name not in registry.module_dict:
                registry.register_module(name=spec.name, module=_stand_in(spec.name, message))
            return
        conflict = self._conflict(registry, ref, spec, cls, record)
        if conflict:
            registry.register_module(
                name=spec.name, module=_stand_in(spec.name, conflict, PluginConflictError),
                force=True)
            for other in self._registrations_of(ref, spec.name):  # the first provider's too
                other.status, other.reason = "conflict", conflict
            registration.status, registration.reason = "conflict", conflict
            warnings.warn(f"cplugins: {conflict}", CPluginsWarning, stacklevel=4)
            return
        if registry.module_dict.get(spec.name) is not cls:
            registry.register_module(name=spec.name, module=cls, force=True)
        self._owners[(str(ref), spec.name)] = (record.label, spec.target)
        registration.status = "registered"

    def _conflict(self, registry, ref: RegistryRef, spec: ModuleSpec, cls: type,
                  record: PluginRecord) -> str:
        """Why ``spec.name`` cannot go into ``registry`` (empty: it can)."""
        existing = registry.module_dict.get(spec.name)
        if existing is None or existing is cls:
            return ""
        if getattr(existing, "cplugins_failed", False):
            if getattr(existing, "cplugins_error", "") != PluginConflictError.__name__:
                return ""  # a failed plugin's stand-in: the working module replaces it
            return existing.__doc__  # already claimed twice
        owned = self._owners.get((str(ref), spec.name))
        if owned is None:  # registered by the stock package (or by code outside cplugins)
            return conflict_with_stock_message(spec.name, ref, _distribution_of(existing),
                                               _qualname(existing), record, spec.target)
        owner, target = owned
        return (f"{spec.name!r} in registry {ref} is provided by two distributions: "
                f"{owner} ({target}) and {record.label} ({spec.target}), so a config that "
                f"uses type={spec.name!r} is refused (the others are not affected). Uninstall "
                f"one, or limit what loads with {ENV_LOAD_PLUGINS}=<plugin names>.")

    def _registrations_of(self, ref: RegistryRef, name: str) -> list[Registration]:
        return [r for record in self.records.values() for r in record.registrations
                if r.registry == ref and r.spec.name == name and r.status == "registered"]

    # -- queries -------------------------------------------------------------------------
    def declared_conflicts(self) -> list[str]:
        """Names two discovered distributions, or a plugin and the stock package, declare for
        one registry (read from declarations and stock sources: nothing is imported)."""
        from cplugins.stock import stock_clashes

        seen: dict[tuple[str, str], str] = {}
        conflicts = []
        for record in self.records.values():
            for reg in record.registrations:
                key = (str(reg.registry), reg.spec.name)
                if key in seen and seen[key] != record.distribution:
                    conflicts.append(f"{reg.spec.name!r} in {reg.registry}: {seen[key]} and "
                                     f"{record.distribution}")
                seen.setdefault(key, record.distribution)
            for clash in stock_clashes(record.specs):
                conflicts.append(
                    f"{clash.name!r} in {clash.registry}: {clash.owner} (stock, {clash.where}) "
                    f"and {record.distribution}; a config that uses type={clash.name!r} is "
                    f"refused while {record.name!r} is active (it must use its own name)")
        return conflicts

    def providers_of(self, name: str) -> list[PluginRecord]:
        """Discovered plugins that declare a module called ``name``."""
        return [r for r in self.records.values() if any(s.name == name for s in r.specs)]


def conflict_with_stock_message(name: str, ref: RegistryRef, owner: str, owner_target: str,
                                record: PluginRecord, target: str) -> str:
    """The refusal of a plugin module that reuses a stock name, with advice that works."""
    package = ref.package if not ref.is_root else owner.split(" ")[0]
    return (f"{name!r} in registry {ref} is {package}'s own ({owner}, {owner_target}) and "
            f"plugin {record.name!r} ({record.label}, {target}) registers the same name, so "
            f"type={name!r} is ambiguous: a config that uses it is refused (the others are "
            f"not affected). The plugin must register its module under its own name (tell its "
            f"author); meanwhile, to use {package}'s {name}, leave the plugin out: "
            f"{ENV_LOAD_PLUGINS}=<the other plugins> and no custom_imports of "
            f"{record.package!r}, or pip uninstall {record.distribution}.")


def _record_of(ep: metadata.EntryPoint) -> PluginRecord:
    return PluginRecord(ep.name, ep.value, ep.dist.name if ep.dist is not None else "?",
                        ep.dist.version if ep.dist is not None else "?")


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
    """What ``cplugins list`` shows as the version of ``dist``."""
    found = versions.installed_version(dist)
    if found is None:
        return __version__ if dist == OWN_DISTRIBUTION else "?"
    return found


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
    """The process-wide manager, started: its built-in plugins arm the explained unknown-type
    errors (:func:`cplugins.diagnose.arm`) and the pending activations before registry lookups
    (:func:`cplugins.registries.arm`) in ``cplugins_startup``, so stock mmengine tools get
    both."""
    global _MANAGER
    if _MANAGER is None:
        _MANAGER = PluginManager()
        _MANAGER.start()
    return _MANAGER
