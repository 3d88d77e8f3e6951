"""Hook implementations of cplugins-inception (light: imports no torch)."""
from cplugins import ModuleSpec, hookimpl

_REGISTRIES = ("mmpretrain::model", "mmdet::model")


@hookimpl
def cplugins_modules() -> list[ModuleSpec]:
    return [
        ModuleSpec("InceptionV4", "cplugins_inception.inception_v4:InceptionV4", _REGISTRIES),
        ModuleSpec("BNInception", "cplugins_inception.bn_inception:BNInception", _REGISTRIES),
    ]
