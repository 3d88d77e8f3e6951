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


@hookimpl
def cplugins_benchmark_cases() -> list:
    """The cases of ``bench.py``: pooled features in, ``loss()`` timed with backward."""
    from cplugins.cases import cases_from_dicts
    from cplugins.manager import load_hook_module

    bench = load_hook_module("cplugins_embednorm.bench")  # plain data, package not activated
    return cases_from_dicts(bench.benchmark_cases(), "cls_features", scope="mmpretrain",
                            inputs_from_module=("num_classes",), train_method="loss")
