"""Hook implementations of cplugins-augfpn (light: imports no torch)."""
from cplugins import ModuleSpec, hookimpl


@hookimpl
def cplugins_modules() -> list[ModuleSpec]:
    return [
        ModuleSpec("AugFPN", "cplugins_augfpn.augfpn:AugFPN", "mmdet::model"),
    ]
