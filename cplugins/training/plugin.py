"""Hook module of cplugins' training part (``cplugins[train]``): its mmengine hooks and optim
wrapper, which ``tools/train.py`` adds to a config (see :mod:`cplugins.training.prepare`)."""
from __future__ import annotations

from cplugins.hookspecs import hookimpl
from cplugins.spec import ModuleSpec


@hookimpl
def cplugins_modules() -> list[ModuleSpec]:
    return [ModuleSpec("ProgressHook", "cplugins.progress:ProgressHook", "hook"),
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
                       "optim_wrapper")]
