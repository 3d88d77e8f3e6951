"""Train any mmengine config with every installed cplugins plugin registered.

    python tools/train.py CONFIG [--work-dir DIR] [--cfg-options k=v ...] [--resume [CKPT]]
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

from common import prepare_config  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train a detector/classifier/segmentor")
    parser.add_argument("config", help="config file (may inherit from mmdet::, mmpretrain::...)")
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
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    from mmengine.runner import Runner

    from cplugins.diagnose import explain_unknown_types

    cfg = prepare_config(args.config, args.cfg_options, args.work_dir, args.launcher,
                         progress=not args.no_progress)
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
