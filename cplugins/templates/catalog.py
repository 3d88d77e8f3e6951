"""Templates contributed through the ``cplugins_templates`` hook (built-in ones included).

Torch-free: listing calls the hooks, which return declarative :class:`Template` records.
"""
from __future__ import annotations

import difflib
import warnings
from dataclasses import dataclass, field

from cplugins.manager import CPluginsWarning, PluginRecord, get_manager
from cplugins.templates.model import TASKS, Template, TemplateError


@dataclass
class TemplateEntry:
    """A template and the plugin that contributed it."""

    template: Template
    plugin: str
    distribution: str
    builtin: bool


@dataclass
class Catalog:
    """Every contributed template, the hook failures and name conflicts."""

    entries: list[TemplateEntry] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    conflicts: dict[str, str] = field(default_factory=dict)

    def names(self) -> list[str]:
        return [e.template.qualified_name for e in self.entries]

    def find(self, name: str, task: str | None = None) -> Template:
        """The template called ``name`` (or ``task/name``); ``task`` narrows the search.

        Raises :class:`TemplateError` naming the closest templates when there is no such
        template, and the qualified names when ``name`` exists in several tasks.
        """
        if task is not None and task not in TASKS:
            raise TemplateError(f"task {task!r} is unknown; allowed: {', '.join(TASKS)}")
        wanted_task, _, short = name.rpartition("/")
        if wanted_task:
            if wanted_task not in TASKS:
                raise TemplateError(f"template {name!r}: task {wanted_task!r} is unknown; "
                                    f"allowed: {', '.join(TASKS)}")
            if task is not None and task != wanted_task:
                raise TemplateError(f"template {name!r} is a {wanted_task} template, but task "
                                    f"{task!r} was asked for")
            task = wanted_task
        matches = [e.template for e in self.entries if e.template.name == short
                   and (task is None or e.template.task == task)]
        if len(matches) == 1:
            conflict = self.conflicts.get(matches[0].qualified_name)
            if conflict:
                raise TemplateError(f"{conflict}. Uninstall one of them, or limit what loads "
                                    "with CPLUGINS_LOAD_PLUGINS=<plugin names>.")
            return matches[0]
        if len(matches) > 1:
            raise TemplateError(
                f"template {name!r} exists for several tasks: "
                f"{', '.join(t.qualified_name for t in matches)}; give TASK/NAME (or --task)")
        pool = [e.template for e in self.entries if task is None or e.template.task == task]
        known = sorted({t.name for t in pool})
        close = difflib.get_close_matches(short, known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        where = f" for task {task}" if task else ""
        raise TemplateError(f"no template {short!r}{where}.{hint} Available: "
                            f"{', '.join(known) or 'none'} (see `cplugins templates`).")


def _templates_of(manager, record: PluginRecord) -> list[Template]:
    impls = [i for i in manager.pm.hook.cplugins_templates.get_hookimpls()
             if i.plugin is record.plugin]
    found: list[Template] = []
    for impl in impls:
        for template in impl.function() or []:
            if not isinstance(template, Template):
                raise TypeError(f"cplugins_templates() must return Template objects, got "
                                f"{template!r}")
            found.append(template)
    return found


def load_catalog() -> Catalog:
    """Ask every discovered plugin for its templates (a failing plugin is reported, skipped)."""
    manager = get_manager()
    manager.discover()
    catalog = Catalog()
    owners: dict[str, str] = {}
    for record in manager.records.values():
        if record.plugin is None or record.status == "failed":
            continue
        try:
            templates = _templates_of(manager, record)
        except Exception as exc:  # one broken plugin must not hide the other templates
            message = (f"plugin {record.name!r} ({record.label}): cplugins_templates failed: "
                       f"{type(exc).__name__}: {exc}")
            catalog.errors.append(message)
            warnings.warn(f"cplugins: {message}", CPluginsWarning, stacklevel=2)
            continue
        for template in templates:
            key = template.qualified_name
            if key in owners:
                catalog.conflicts[key] = (f"template {key} is provided by two distributions: "
                                          f"{owners[key]} and {record.label}")
                continue
            owners[key] = record.label
            catalog.entries.append(TemplateEntry(template, record.name, record.label,
                                                 record.builtin))
    return catalog


def get_template(name: str, task: str | None = None) -> Template:
    """Look a template up by ``name`` or ``task/name``."""
    return load_catalog().find(name, task)
