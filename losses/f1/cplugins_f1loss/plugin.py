"""Hook implementations of cplugins-f1loss (light: imports no torch)."""
from cplugins import ModuleSpec, hookimpl


@hookimpl
def cplugins_modules() -> list[ModuleSpec]:
    return [
        ModuleSpec("SoftF1Loss", "cplugins_f1loss.soft_f1:SoftF1Loss",
                   ("mmpretrain::model", "mmdet::model")),
    ]


@hookimpl
def cplugins_benchmark_cases() -> list:
    """The cases of ``bench.py`` (logits and labels in, against CrossEntropyLoss)."""
    from cplugins.cases import cases_from_dicts
    from cplugins.manager import load_hook_module

    bench = load_hook_module("cplugins_f1loss.bench")  # plain data, package not activated
    return cases_from_dicts(bench.benchmark_cases(), "scores")
