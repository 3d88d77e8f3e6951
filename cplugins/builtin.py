"""Modules shipped with cplugins itself, declared the way an installed plugin does."""
from cplugins.hookspecs import hookimpl
from cplugins.spec import ModuleSpec


@hookimpl
def cplugins_modules() -> list[ModuleSpec]:
    return [ModuleSpec("ProgressHook", "cplugins.progress:ProgressHook", "hook"),
            # used by rendered templates (cplugins.templates)
            ModuleSpec("MinSamplesDataset", "cplugins.templates.datasets:MinSamplesDataset",
                       "dataset"),
            ModuleSpec("OHEMLoss", "cplugins.templates.losses:OHEMLoss", "mmdet::model")]


@hookimpl
def cplugins_templates() -> list:
    """The built-in training templates (declarative; rendering imports the heavy parts)."""
    from cplugins.templates.library import builtin_templates

    return builtin_templates()
