"""Evaluate a checkpoint with the config's test evaluator (e.g. mmdet's CocoMetric).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--cfg-options k=v ...] [--out JSON]

The checkpoint must match the model (keys and shapes): otherwise a summary says how it
differs and what it was trained as, and nothing is evaluated (``--allow-partial`` evaluates
it anyway).
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import cplugins.compat  # noqa: E402

cplugins.compat.apply()  # this repository's tools opt in to the compatibility fixes

import common  # noqa: E402,F401  (cplugins.all first: plugins and compat fixes)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Evaluate a checkpoint")
    parser.add_argument("config")
    parser.add_argument("checkpoint")
    parser.add_argument("--work-dir")
    parser.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", help="write the metrics to this JSON file")
    parser.add_argument("--allow-partial", action="store_true",
                        help="evaluate even a checkpoint whose keys or shapes differ from the "
                             "model (the rest stays randomly initialised)")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"],
                        default="none")
    parser.add_argument("--local-rank", "--local_rank", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    from mmengine.runner import Runner

    from cplugins.diagnose import explain_unknown_types
    from cplugins.errors import PluginLockError
    from cplugins.lock import check_checkpoint_plugins
    from cplugins.training.errors import (
        CheckpointFileError,
        CheckpointMismatchError,
        PreflightError,
    )
    from cplugins.training.preflight import check_before_build
    from cplugins.training.startup import check_fits_model, read_local_checkpoint

    try:  # one line for a missing, empty, truncated or refused file, before anything is built
        checkpoint = read_local_checkpoint(args.checkpoint)
        for warning in check_checkpoint_plugins(checkpoint, args.checkpoint):  # its plugins
            print(f"warning: {warning}", file=sys.stderr)
    except (CheckpointFileError, PluginLockError) as exc:
        raise SystemExit(f"error: {exc}") from None
    from cplugins.training.prepare import prepare_for_training

    cfg = prepare_for_training(args.config, cfg_options=args.cfg_options, work_dir=args.work_dir,
                               launcher=args.launcher, purpose="test")
    cfg.load_from = args.checkpoint
    try:  # mmdet 2 names, missing optional packages (a metric's), an unreachable checkpoint
        for warning in check_before_build(cfg, "test"):
            print(f"warning: {warning}", file=sys.stderr)
    except PreflightError as exc:
        raise SystemExit(f"error: {exc}") from None
    with explain_unknown_types():
        runner = Runner.from_cfg(cfg)
        try:
            check_fits_model(runner.model, checkpoint, args.checkpoint,
                             strict=not args.allow_partial)
        except CheckpointMismatchError as exc:
            raise SystemExit(f"error: {exc}\n  (--allow-partial evaluates it anyway)") from None
        del checkpoint
        metrics = runner.test()
    if args.out:
        with open(args.out, "w") as f:
            json.dump(metrics, f, indent=2)
    return metrics


if __name__ == "__main__":
    main()
