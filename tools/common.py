"""Shared set-up of tools/train.py and tools/test.py."""
from __future__ import annotations

import argparse
import os.path as osp

from mmengine.config import Config, DictAction

import cplugins.all  # noqa: F401  (registers every installed plugin)
from cplugins.data.synthetic import make_synthetic_data
from cplugins.lock import add_plugin_imports


def parse_cfg_options(options: list[str]) -> dict:
    """``["a.b=1", "c=[1,2]"]`` -> ``{"a.b": 1, "c": [1, 2]}`` (mmengine's own parsing)."""
    for option in options:
        if "=" not in option:
            raise SystemExit(f"--cfg-options: {option!r} must look like KEY=VALUE")
    namespace = argparse.Namespace()
    DictAction(option_strings=[], dest="cfg_options")(None, namespace, options)
    return namespace.cfg_options


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


def template_config(name: str, sets: list[str], data: str | None = None,
                    config: str | None = None, task: str | None = None) -> Config:
    """Render template ``name`` (``--template``) with ``--set`` values and ``--data``.

    ``config`` (the positional CONFIG) is the user's file of a barebones template. Invalid
    hyperparameters exit with every problem listed; the work dir defaults to work_dirs/NAME.
    """
    import cplugins.templates.runtime  # noqa: F401  (what the config's custom_imports would do)
    from cplugins.templates import TemplateError, get_template, parse_assignments
    from cplugins.templates.rendering import render

    try:
        values = parse_assignments(sets)
        template = get_template(name, task)
        if config is not None:
            if "config" not in {hp.name for hp in template.hyperparameters}:
                raise TemplateError(f"CONFIG {config!r} was given with --template {name}, which "
                                    "takes no config file (only barebones templates do: "
                                    "MMDetection, MMClassification, MMSegmentation)")
            if values.setdefault("config", config) != config:
                raise TemplateError(f"CONFIG {config!r} and --set config={values['config']!r} "
                                    "disagree; give one")
        cfg = render(template, values, data=data)
    except TemplateError as exc:
        raise SystemExit(f"error: {exc}") from None
    cfg.work_dir = osp.join("work_dirs", template.name)
    return cfg


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


def prepare_config(path: str | Config, cfg_options: list[str], work_dir: str | None,
                   launcher: str, progress: bool = True) -> Config:
    cfg = path if isinstance(path, Config) else Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(parse_cfg_options(cfg_options))
        check_train_loop(cfg)
    cfg.launcher = launcher
    if launcher != "none":
        use_cpu_process_group(cfg)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get("work_dir") is None:
        cfg.work_dir = osp.join("work_dirs", osp.splitext(osp.basename(path))[0])
    if cfg.get("synthetic_data"):
        make_synthetic_data(cfg.synthetic_data)
    if progress:
        hooks = list(cfg.get("custom_hooks", []))
        if not any(h.get("type") == "ProgressHook" for h in hooks):
            hooks.append(dict(type="ProgressHook"))
        cfg.custom_hooks = hooks
    # the plugin lock in the work dir and checkpoints; custom_imports so a stock Runner can
    # rebuild the config this run saves
    if not any(h.get("type") == "PluginLockHook" for h in cfg.get("custom_hooks", [])):
        cfg.custom_hooks = [*cfg.get("custom_hooks", []), dict(type="PluginLockHook")]
    add_plugin_imports(cfg)
    return cfg
