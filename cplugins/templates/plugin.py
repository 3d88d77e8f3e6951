"""Hook module of cplugins' templates part (``cplugins[train]``): the ``cplugins_templates``
hook specification, the built-in templates, the modules rendered configs use, and the
``cplugins runs / templates / render`` commands."""
from __future__ import annotations

from cplugins.hookspecs import hookimpl
from cplugins.spec import ModuleSpec


@hookimpl
def cplugins_add_hookspecs(pluginmanager) -> None:
    from cplugins.templates import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


@hookimpl
def cplugins_modules() -> list[ModuleSpec]:
    return [ModuleSpec("MinSamplesDataset", "cplugins.templates.datasets:MinSamplesDataset",
                       "dataset"),
            ModuleSpec("OHEMLoss", "cplugins.templates.losses:OHEMLoss", "mmdet::model"),
            ModuleSpec("ExperimentRecordHook",
                       "cplugins.templates.experiment_hook:ExperimentRecordHook", "hook")]


@hookimpl
def cplugins_templates() -> list:
    """The built-in training templates (declarative; rendering imports the heavy parts)."""
    from cplugins.templates.library import builtin_templates

    return builtin_templates()


@hookimpl
def cplugins_commands(subparsers) -> None:
    from cplugins.templates.cli import add_parsers

    add_parsers(subparsers)
    for name in ("runs", "templates", "render"):
        subparsers.choices[name].set_defaults(extra="train")
