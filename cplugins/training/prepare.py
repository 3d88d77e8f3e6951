"""The one preparation of a config for training or testing.

``tools/train.py``, ``tools/test.py``, tuning trials (``cplugins tune``), the AugFPN ablation
and the demo all call :func:`prepare_for_training`, so a safeguard added here applies to every
run: the work dir, the launcher and its CPU process group, the synthetic data set, the progress
display, the training safeguards, the multi-process options, the seed and the plugin lock.
"""
from __future__ import annotations

import argparse
import os.path as osp
from typing import TYPE_CHECKING

from cplugins.lock import META_KEY, plugin_lock
from cplugins.training.setup import add_custom_hook

if TYPE_CHECKING:
    from mmengine.config import Config

#: the module configs import to get cplugins' own modules and compatibility fixes back
#: (``custom_imports``); a stock Runner then rebuilds a config tools/train.py saved
RUNTIME_IMPORT = "cplugins.templates.runtime"


def parse_cfg_options(options: list[str]) -> dict:
    """``["a.b=1", "c=[1,2]"]`` -> ``{"a.b": 1, "c": [1, 2]}`` (mmengine's own parsing)."""
    from mmengine.config import DictAction

    for option in options:
        if "=" not in option:
            raise SystemExit(f"--cfg-options: {option!r} must look like KEY=VALUE")
    namespace = argparse.Namespace()
    DictAction(option_strings=[], dest="cfg_options")(None, namespace, options)
    return namespace.cfg_options


def check_train_loop(cfg: Config) -> None:
    """An epoch-based loop given ``max_iters`` (or an iteration-based one ``max_epochs``)
    would fail with a TypeError once the runner builds it; say so now, in one line."""
    loop = cfg.get("train_cfg") or {}
    by_epoch = loop.get("by_epoch", "max_epochs" in loop)
    kind = loop.get("type", "EpochBasedTrainLoop" if by_epoch else "IterBasedTrainLoop")
    wrong = {"EpochBasedTrainLoop": ("max_iters", "max_epochs", "epochs"),
             "IterBasedTrainLoop": ("max_epochs", "max_iters", "iterations")}.get(kind)
    if wrong and wrong[0] in loop:
        raise SystemExit(
            f"error: --cfg-options train_cfg.{wrong[0]}={loop[wrong[0]]}: this config trains by "
            f"{wrong[2]} ({kind}, {wrong[1]}={loop.get(wrong[1])}), which takes no {wrong[0]}; "
            f"give train_cfg.{wrong[1]}=N instead (templates: --set num_epochs=N)")


def use_cpu_process_group(cfg: Config) -> None:
    """Without CUDA, multi-process training runs on gloo with CPU DDP (no device_ids)."""
    import torch

    if torch.cuda.is_available():
        return
    env_cfg = dict(cfg.get("env_cfg") or {})  # (Config.setdefault returns copies)
    env_cfg["dist_cfg"] = dict(env_cfg.get("dist_cfg") or {}, backend="gloo")
    cfg.env_cfg = env_cfg
    if cfg.get("model_wrapper_cfg") is None:
        cfg.model_wrapper_cfg = dict(type="MMDistributedDataParallel", device_ids=None,
                                     broadcast_buffers=False)


def add_plugin_imports(cfg: Config) -> None:
    """Give ``cfg`` what a stock Runner needs to rebuild it, and what a reader needs to know:
    ``custom_imports`` of cplugins' runtime (its own modules, its compatibility fixes) and of
    the package of every plugin whose modules it uses, and the lock itself as
    ``cplugins_lock`` (``cplugins lock CONFIG`` prints it as requirement lines)."""
    lock = plugin_lock(cfg)
    packages = [RUNTIME_IMPORT, *(e["package"] for e in lock if e["distribution"] != "cplugins")]
    custom = dict(cfg.get("custom_imports") or {})
    imports = custom.get("imports") or []
    imports = [imports] if isinstance(imports, str) else list(imports)
    imports += [package for package in packages if package not in imports]
    custom["imports"] = imports
    custom.setdefault("allow_failed_imports", False)
    cfg.custom_imports = custom
    cfg[META_KEY] = lock


def prepare_for_training(source: str | Config, *, cfg_options: list[str] | None = None,
                         work_dir: str | None = None, launcher: str = "none",
                         purpose: str = "train", progress: bool = True, nan_guard: bool = True,
                         seed: int | None = None, sync_bn: bool = False,
                         global_loss_norm: bool = True, amp: bool = False) -> Config:
    """``source`` (a config file or a :class:`Config`, changed in place) ready to run.

    Args:
        cfg_options: ``KEY=VALUE`` overrides (``--cfg-options``), checked against the loop.
        work_dir: the run's folder; default: the config's, else ``work_dirs/<config name>``.
        launcher: ``none``, ``pytorch``, ``slurm`` or ``mpi``; without CUDA a multi-process run
            gets gloo and CPU DDP.
        purpose: ``train`` adds the training safeguards (NaN guard, random-state and atomic
            checkpoints), the multi-process options and ``seed``; ``test`` does not.
        progress: add the progress display (``ProgressHook``).
        nan_guard: stop on a non-finite loss (``NanGuardHook``; ``--no-nan-guard``).
        seed: ``randomness.seed`` (with a launcher: each rank ``seed + rank``).
        sync_bn: BatchNorm statistics over every rank (with a launcher).
        global_loss_norm: anchor-head losses normalised by every rank's positives.
        amp: mixed precision (GPU: float16 with loss scaling; CPU: bfloat16 autocast).

    Always: the synthetic data set the config names (``synthetic_data``) is generated, and the
    plugin lock goes into the work dir and checkpoints (``PluginLockHook``), the config
    (``cplugins_lock``) and its ``custom_imports``.
    """
    from mmengine.config import Config

    if purpose not in ("train", "test"):
        raise ValueError(f"purpose={purpose!r}: 'train' or 'test'")
    cfg = source if isinstance(source, Config) else Config.fromfile(source)
    if cfg_options:
        cfg.merge_from_dict(parse_cfg_options(cfg_options))
        check_train_loop(cfg)
    cfg.launcher = launcher
    if launcher != "none":
        use_cpu_process_group(cfg)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get("work_dir") is None:
        name = osp.splitext(osp.basename(cfg.filename or "config"))[0]
        cfg.work_dir = osp.join("work_dirs", name)
    if cfg.get("synthetic_data"):
        from cplugins.data.synthetic import make_synthetic_data

        make_synthetic_data(cfg.synthetic_data)
    if progress:
        add_custom_hook(cfg, "ProgressHook")
    add_custom_hook(cfg, "PluginLockHook")
    add_plugin_imports(cfg)
    if purpose == "train":
        _prepare_training_run(cfg, launcher, nan_guard, seed, sync_bn, global_loss_norm, amp)
    return cfg


def _prepare_training_run(cfg: Config, launcher: str, nan_guard: bool, seed: int | None,
                          sync_bn: bool, global_loss_norm: bool, amp: bool) -> None:
    from cplugins.training.setup import (
        add_multiprocess_options,
        add_training_safeguards,
        seed_ranks_apart,
    )

    if amp:  # GPU: AmpOptimWrapper (float16, loss scaling); CPU: bfloat16 autocast
        from cplugins.training.amp import use_amp

        use_amp(cfg)
    add_training_safeguards(cfg, nan_guard=nan_guard)
    if launcher != "none":  # each rank its own random stream; equivalence options
        import torch

        seed_ranks_apart(cfg, seed)
        add_multiprocess_options(cfg, sync_bn=sync_bn, global_loss_norm=global_loss_norm,
                                 cuda=torch.cuda.is_available())
    elif seed is not None:
        cfg.randomness = dict(cfg.get("randomness") or {}, seed=seed)
