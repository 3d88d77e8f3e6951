"""Hook implementations of cplugins-embednorm (light: imports no torch)."""
from cplugins import ModuleSpec, hookimpl


@hookimpl
def cplugins_modules() -> list[ModuleSpec]:
    return [
        ModuleSpec("EmbedNormClsHead", "cplugins_embednorm.embednorm_head:EmbedNormClsHead",
                   "mmpretrain::model"),
        ModuleSpec("EmbedNormClassifier", "cplugins_embednorm.classifier:EmbedNormClassifier",
                   "mmpretrain::model"),
    ]
