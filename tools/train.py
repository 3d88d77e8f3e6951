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

from common import prepare_config, template_config  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train a detector/classifier/segmentor")
    parser.add_argument("config", nargs="?",
                        help="config file (may inherit from mmdet::, mmpretrain::...); with a "
                             "barebones --template, the user's config")
    parser.add_argument("--template", help="train a template (see `cplugins templates`)")
    parser.add_argument("--set", nargs="+", action="extend", default=[], metavar="NAME=VALUE",
                        help="template hyperparameters, e.g. batch_size=4 image_size=512")
    parser.add_argument("--data", help="template dataset folder (COCO, image folders, or "
                                       "img_dir/ann_dir); default: the synthetic set")
    parser.add_argument("--task", choices=["detection", "classification", "segmentation"],
                        help="for template names that exist in several tasks")
    parser.add_argument("--work-dir", help="where logs and checkpoints go")
    parser.add_argument("--resume", nargs="?", const="auto",
                        help="resume from CKPT, or from the latest checkpoint in work-dir")
    parser.add_argument("--amp", action="store_true", help="automatic mixed precision")
    parser.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE",
                        help="override config entries, e.g. train_cfg.max_iters=10")
    parser.add_argument("--no-progress", action="store_true", help="no progress display")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"],
                        default="none", help="job launcher for multi-process training")
    parser.add_argument("--local-rank", "--local_rank", type=int, default=0)
    args = parser.parse_args(argv)
    if args.template is None and args.config is None:
        parser.error("give a CONFIG file or --template NAME")
    if args.template is None and (args.set or args.data or args.task):
        parser.error("--set, --data and --task go with --template")
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    from mmengine.runner import Runner

    from cplugins.diagnose import explain_unknown_types

    source = args.config
    if args.template:
        source = template_config(args.template, args.set, args.data, args.config, args.task)
    cfg = prepare_config(source, args.cfg_options, args.work_dir, args.launcher,
                         progress=not args.no_progress)
    if args.template:
        from cplugins.templates.weights import WeightsUnavailableError, check_checkpoints

        try:  # offline: fail in seconds, before the model is built, saying what to do
            check_checkpoints(cfg)
        except WeightsUnavailableError as exc:
            raise SystemExit(f"error: {exc}") from None
    if args.amp:
        cfg.optim_wrapper.type = "AmpOptimWrapper"
        cfg.optim_wrapper.setdefault("loss_scale", "dynamic")
    if args.resume == "auto":
        cfg.resume, cfg.load_from = True, None
    elif args.resume:
        cfg.resume, cfg.load_from = True, args.resume
    with explain_unknown_types():
        runner = Runner.from_cfg(cfg)
        runner.train()
    return dict(runner.message_hub.log_scalars)


if __name__ == "__main__":
    main()
