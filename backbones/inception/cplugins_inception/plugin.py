"""Hook implementations of cplugins-inception (light: imports no torch)."""
from cplugins import ModuleSpec, hookimpl

_REGISTRIES = ("mmpretrain::model", "mmdet::model")


@hookimpl
def cplugins_modules() -> list[ModuleSpec]:
    return [
        ModuleSpec("InceptionV4", "cplugins_inception.inception_v4:InceptionV4", _REGISTRIES),
        ModuleSpec("BNInception", "cplugins_inception.bn_inception:BNInception", _REGISTRIES),
    ]


@hookimpl
def cplugins_benchmark_cases() -> list:
    """The cases of ``bench.py`` (images in, timed against mmpretrain's ResNet-50)."""
    from cplugins.cases import cases_from_dicts
    from cplugins.manager import load_hook_module

    bench = load_hook_module("cplugins_inception.bench")  # plain data, package not activated
    return cases_from_dicts(bench.benchmark_cases(), "image", scope="mmpretrain")
