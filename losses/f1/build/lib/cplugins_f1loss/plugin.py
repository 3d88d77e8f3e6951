"""Hook implementations of cplugins-f1loss (light: imports no torch)."""
from cplugins import ModuleSpec, hookimpl


@hookimpl
def cplugins_modules() -> list[ModuleSpec]:
    return [
        ModuleSpec("SoftF1Loss", "cplugins_f1loss.soft_f1:SoftF1Loss",
                   ("mmpretrain::model", "mmdet::model")),
    ]
