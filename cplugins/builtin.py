"""Modules shipped with cplugins itself, declared the way an installed plugin does."""
from cplugins.hookspecs import hookimpl
from cplugins.spec import ModuleSpec


@hookimpl
def cplugins_modules() -> list[ModuleSpec]:
    return [ModuleSpec("ProgressHook", "cplugins.progress:ProgressHook", "hook"),
            ModuleSpec("PluginLockHook", "cplugins.lock_hook:PluginLockHook", "hook"),
            # training safeguards (cplugins.training), added by tools/train.py
            ModuleSpec("NanGuardHook", "cplugins.training.nan_guard:NanGuardHook", "hook"),
            ModuleSpec("RandomStateHook", "cplugins.training.random_state:RandomStateHook",
                       "hook"),
            ModuleSpec("AtomicCheckpointHook",
                       "cplugins.training.checkpointing:AtomicCheckpointHook", "hook"),
            ModuleSpec("CrossRankBatchNormHook",
                       "cplugins.training.cross_rank_bn:CrossRankBatchNormHook", "hook"),
            ModuleSpec("GlobalLossNormHook", "cplugins.training.loss_norm:GlobalLossNormHook",
                       "hook"),
            ModuleSpec("CpuAmpOptimWrapper", "cplugins.training.amp:CpuAmpOptimWrapper",
                       "optim_wrapper"),
            # used by rendered templates (cplugins.templates)
            ModuleSpec("MinSamplesDataset", "cplugins.templates.datasets:MinSamplesDataset",
                       "dataset"),
            ModuleSpec("OHEMLoss", "cplugins.templates.losses:OHEMLoss", "mmdet::model"),
            ModuleSpec("ExperimentRecordHook",
                       "cplugins.templates.experiment_hook:ExperimentRecordHook", "hook")]


@hookimpl
def cplugins_templates() -> list:
    """The built-in training templates (declarative; rendering imports the heavy parts)."""
    from cplugins.templates.library import builtin_templates

    return builtin_templates()
