"""Train any mmengine config with every installed cplugins plugin registered.

    python tools/train.py CONFIG [--work-dir DIR] [--cfg-options k=v ...] [--resume [CKPT]]
    python tools/train.py --template NAME [--set k=v ...] [--data PATH] [--work-dir DIR]
    python tools/train.py --template MMDetection my_config.py [--data PATH]   # barebones
    torchrun --nproc_per_node 2 tools/train.py CONFIG --launcher pytorch   # multi-process

Configs may declare ``synthetic_data = dict(task='detection', data_root=..., ...)``: the
embedded dataset is generated there first (deterministic; skipped when already present).
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import cplugins.compat  # noqa: E402

cplugins.compat.apply()  # this repository's tools opt in to the compatibility fixes

from common import template_config  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train a detector/classifier/segmentor")
    parser.add_argument("config", nargs="?",
                        help="config file (may inherit from mmdet::, mmpretrain::...); with a "
                             "barebones --template, the user's config")
    parser.add_argument("--template", help="train a template (see `cplugins templates`)")
    parser.add_argument("--set", nargs="+", action="extend", default=[], metavar="NAME=VALUE",
                        help="template hyperparameters, e.g. batch_size=4 image_size=512")
    parser.add_argument("--data", help="template dataset folder (COCO, image folders, "
                                       "img_dir/ann_dir, or train/ and val/ Deep Lake "
                                       "datasets); default: the synthetic set")
    parser.add_argument("--task", choices=["detection", "classification", "segmentation"],
                        help="for template names that exist in several tasks")
    parser.add_argument("--work-dir", help="where logs and checkpoints go")
    parser.add_argument("--resume", nargs="?", const="auto",
                        help="resume from CKPT, or from the latest checkpoint in work-dir")
    parser.add_argument("--resume-or-start", action="store_true",
                        help="resume from the latest checkpoint in work-dir if there is one, "
                             "else start from scratch")
    parser.add_argument("--allow-partial", action="store_true",
                        help="resume even from a checkpoint whose keys or shapes differ from "
                             "the model (mmengine's non-strict loading)")
    parser.add_argument("--no-nan-guard", action="store_true",
                        help="train on through NaN/inf losses and gradients (no NanGuardHook)")
    parser.add_argument("--no-data-check", action="store_true",
                        help="skip the check of images and annotations before training")
    parser.add_argument("--data-check-sample", type=int, default=1000, metavar="N",
                        help="the data check decodes N images per split, chosen reproducibly "
                             "(default 1000; 0: all); every file is checked to exist")
    parser.add_argument("--amp", action="store_true", help="automatic mixed precision")
    parser.add_argument("--seed", type=int,
                        help="random seed (randomness.seed); with several processes rank r "
                             "draws from seed + r")
    parser.add_argument("--sync-bn", action="store_true",
                        help="multi-process: BatchNorm statistics over the batch of all "
                             "processes (SyncBatchNorm on CUDA, CrossRankBatchNorm on CPU)")
    parser.add_argument("--no-global-loss-norm", action="store_true",
                        help="multi-process: keep mmdet anchor heads' per-process loss "
                             "normalisation (default: by the positives of all processes)")
    parser.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE",
                        help="override config entries, e.g. train_cfg.max_epochs=1 "
                             "(iteration-based configs: train_cfg.max_iters=10)")
    parser.add_argument("--no-progress", action="store_true", help="no progress display")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"],
                        default="none", help="job launcher for multi-process training")
    parser.add_argument("--local-rank", "--local_rank", type=int, default=0)
    args = parser.parse_args(argv)
    if args.template is None and args.config is None:
        parser.error("give a CONFIG file or --template NAME")
    if args.template is None and (args.set or args.data or args.task):
        parser.error("--set, --data and --task go with --template")
    if args.data_check_sample < 0:
        parser.error(f"--data-check-sample must be >= 0 (0: every image), got "
                     f"{args.data_check_sample}")
    if args.sync_bn and args.launcher == "none":
        parser.error("--sync-bn synchronises BatchNorm across processes: give --launcher "
                     "pytorch, slurm or mpi (e.g. torchrun --nproc_per_node 2 tools/train.py "
                     "... --launcher pytorch --sync-bn)")
    if args.resume_or_start and args.resume is None:
        args.resume = "auto"
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    return args


def train_config(args: argparse.Namespace, source):
    """The config ``args`` train (``source``: CONFIG or the rendered template), prepared as
    every run is (:func:`cplugins.training.prepare.prepare_for_training`)."""
    from cplugins.training.prepare import prepare_for_training

    return prepare_for_training(
        source, cfg_options=args.cfg_options, work_dir=args.work_dir, launcher=args.launcher,
        progress=not args.no_progress, nan_guard=not args.no_nan_guard, seed=args.seed,
        sync_bn=args.sync_bn, global_loss_norm=not args.no_global_loss_norm, amp=args.amp)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    from mmengine.runner import Runner

    from cplugins.diagnose import explain_unknown_types

    if args.resume not in (None, "auto"):  # its plugins, before the config imports them
        from cplugins.errors import PluginLockError
        from cplugins.lock import check_checkpoint_file

        try:
            check_checkpoint_file(args.resume)  # missing ones; other versions: warned below
        except PluginLockError as exc:
            raise SystemExit(f"error: {exc}") from None
    source = args.config
    if args.template:
        source = template_config(args.template, args.set, args.data, args.config, args.task)
    cfg = train_config(args, source)
    if args.template:
        from cplugins.training.weights import WeightsUnavailableError, check_checkpoints

        try:  # offline: fail in seconds, before the model is built, saying what to do
            check_checkpoints(cfg)
        except WeightsUnavailableError as exc:
            raise SystemExit(f"error: {exc}") from None
    from cplugins.data.check import DataCheckError, check_training_data
    from cplugins.errors import CPluginsError, PluginLockError
    from cplugins.lock import check_checkpoint_plugins
    from cplugins.training.errors import (
        CheckpointFileError,
        CheckpointMismatchError,
        PreflightError,
        TrainingError,
    )
    from cplugins.training.preflight import check_before_build
    from cplugins.training.startup import check_fits_model, read_local_checkpoint, resume_target

    try:  # before anything is built: nothing to resume, an unreadable checkpoint, bad data
        resume_from = resume_target(args.resume, cfg.work_dir, args.resume_or_start)
        checkpoint_path = resume_from or cfg.get("load_from")
        # mmdet 2 names, missing optional packages, checkpoints that cannot be downloaded
        for warning in check_before_build(cfg, "train", checkpoint_path,
                                          checkpoints=not args.template):
            print(f"warning: {warning}", file=sys.stderr)
        checkpoint = read_local_checkpoint(checkpoint_path)
        for warning in check_checkpoint_plugins(checkpoint, checkpoint_path):  # its plugins
            print(f"warning: {warning}", file=sys.stderr)
        if not args.no_data_check:
            check_training_data(cfg, args.data_check_sample or None)
    except (DataCheckError, CheckpointFileError, PluginLockError, PreflightError) as exc:
        raise SystemExit(f"error: {exc}") from None
    if resume_from:
        cfg.resume, cfg.load_from = True, resume_from
    elif args.resume:
        print(f"nothing to resume in {cfg.work_dir}: starting from scratch", file=sys.stderr)
    with explain_unknown_types():
        runner = Runner.from_cfg(cfg)
        try:
            # resuming needs this model's checkpoint; fine-tuning (load_from) may differ
            check_fits_model(runner.model, checkpoint, checkpoint_path,
                             strict=bool(resume_from) and not args.allow_partial)
            del checkpoint
            runner.train()
        except (TrainingError, CheckpointMismatchError, CPluginsError) as exc:
            # CPluginsError: e.g. a plugin dataset's bad input (built when training starts)
            raise SystemExit(f"error: {exc}") from None
    return dict(runner.message_hub.log_scalars)


def _leave_process_group() -> None:
    """Before the script exits: torch asks for it, and a rank that exits while gloo's threads
    still run can abort. (Not in ``main``: callers in a launch keep using the group.)"""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
    _leave_process_group()
