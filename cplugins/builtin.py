"""Modules shipped with cplugins itself, declared the way an installed plugin does."""
from cplugins.hookspecs import hookimpl
from cplugins.spec import ModuleSpec


@hookimpl
def cplugins_modules() -> list[ModuleSpec]:
    return [ModuleSpec("ProgressHook", "cplugins.progress:ProgressHook", "hook")]
