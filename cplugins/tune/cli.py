"""``cplugins tune TEMPLATE ...`` and ``cplugins tune show STUDY ...`` (argparse).

Building the parser imports neither optuna nor torch: ``cplugins list`` stays light.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys

EPILOG = """examples:
  cplugins tune MMDetection_YOLOX --set model_size=tiny --trials 12 --metric coco/bbox_mAP
  cplugins tune MMDetection_FasterRCNN --search per_item_lrate batch_size=2:8 --trials 20 \\
      --metric coco/bbox_mAP --data coco/ --storage sqlite:///tune.db --study frcnn
  cplugins tune show frcnn --storage sqlite:///tune.db --render-best best.py --charts charts/

Several processes (or machines) with the same --study and --storage share the trials; a
killed one's trial is marked FAIL (heartbeat) and running the command again continues.
--trials N counts the study's finished trials (COMPLETE, PRUNED, FAIL) and running ones.
Multi-process training of each trial: start every process under the launcher, as with
tools/train.py: rank 0 runs the study, every rank trains its trials together:
  torchrun --nproc_per_node 4 -m cplugins.cli tune MMDetection_YOLOF --trials 20 \
      --metric coco/bbox_mAP --launcher pytorch
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``tune`` to the ``cplugins`` command line."""
    p = sub.add_parser(
        "tune", help="search a template's hyperparameters (Optuna); `tune show STUDY`",
        description="Search a template's declared hyperparameter ranges with Optuna: each "
                    "trial renders the template, trains it with mmengine's Runner in its own "
                    "work dir and reports the validation metric (pruning stops unpromising "
                    "trials). `cplugins tune show STUDY` prints the trials, writes the best "
                    "config and PNG charts.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("template", metavar="TEMPLATE", help="template name (or TASK/NAME), or "
                   "`show` to show a study")
    p.add_argument("study_to_show", nargs="?", metavar="STUDY", help="with `show`: the study")
    p.add_argument("--set", nargs="+", action="extend", default=[], metavar="NAME=VALUE",
                   help="fixed hyperparameters, e.g. model_size=tiny num_epochs=12")
    p.add_argument("--search", nargs="+", action="extend", default=[],
                   metavar="NAME[=LOW:HIGH]", help="hyperparameters to search (default: the "
                   "ones the template marks tunable; `cplugins templates show` lists them)")
    p.add_argument("--trials", type=int, help="finished trials the study should have")
    p.add_argument("--metric", help="validation metric key, e.g. coco/bbox_mAP, "
                   "accuracy/top1, mIoU")
    p.add_argument("--direction", default="maximize", choices=["maximize", "minimize"])
    p.add_argument("--study", help="study name (default: the template's name)")
    p.add_argument("--storage", help="Optuna storage URL: sqlite:///FILE, an SQLAlchemy URL, "
                   "journal:FILE (default: sqlite:///WORK_DIR/tune.db)")
    p.add_argument("--data", help="dataset folder (default: the task's synthetic set)")
    p.add_argument("--task", choices=["detection", "classification", "segmentation"],
                   help="for template names in several tasks")
    p.add_argument("--sampler", default="tpe", choices=["tpe", "random", "grid"])
    p.add_argument("--seed", type=int, help="seed of the sampler (trainings use "
                   "randomness.seed=0 unless --cfg-options set it)")
    p.add_argument("--pruner", default="median", choices=["median", "none"])
    p.add_argument("--work-dir", help="default work_dirs/tune/STUDY; trial N trains in "
                   "WORK_DIR/trial_000N")
    p.add_argument("--cfg-options", nargs="+", action="extend", default=[],
                   metavar="KEY=VALUE", help="config entries set on every trial's config")
    p.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none",
                   help="job launcher of each trial's training (as tools/train.py)")
    p.add_argument("--heartbeat", type=int, default=60, metavar="SECONDS",
                   help="trial heartbeat; a trial silent for twice this is failed (default 60)")
    p.add_argument("--verbose", action="store_true", help="show mmengine's log lines")
    p.add_argument("--render-best", metavar="FILE", help="with `show`: write the best "
                   "trial's config (plain mmengine config)")
    p.add_argument("--charts", metavar="DIR", help="with `show`: write PNG charts there "
                   "(optimization history, parameter importances, slice plot)")
    p.set_defaults(func=run_command)


def _error(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def run_command(args: argparse.Namespace) -> int:
    from cplugins.errors import CPluginsError

    try:
        if args.template == "show":
            return _show(args)
        return _tune(args)
    except CPluginsError as exc:
        return _error(str(exc))


def _tune(args: argparse.Namespace) -> int:
    from cplugins.templates.model import parse_assignments
    from cplugins.tune.objective import MetricNotFound
    from cplugins.tune.study import tune

    shown_only = [o for o, v in (("--render-best", args.render_best), ("--charts", args.charts),
                                 ("STUDY", args.study_to_show)) if v]
    if shown_only:
        return _error(f"{', '.join(shown_only)}: only with `cplugins tune show STUDY`")
    missing = [o for o, v in (("--trials N", args.trials), ("--metric KEY", args.metric))
               if v is None]
    if missing:
        return _error(f"cplugins tune {args.template}: give {' and '.join(missing)}")
    try:
        study = tune(args.template, args.trials, metric=args.metric, direction=args.direction,
                     search=args.search, fixed=parse_assignments(args.set),
                     study_name=args.study, storage=args.storage, data=args.data,
                     sampler=args.sampler, seed=args.seed, pruner=args.pruner,
                     work_dir=args.work_dir, launcher=args.launcher,
                     cfg_options=args.cfg_options, task=args.task, heartbeat=args.heartbeat,
                     quiet=not args.verbose)
    except MetricNotFound as exc:
        return _error(str(exc))
    if study is None:  # a rank > 0 of a --launcher run: rank 0 reports
        return 0
    from cplugins.tune.show import best_text

    print(best_text(study))
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    return 0 if complete else 1


def _show(args: argparse.Namespace) -> int:
    from cplugins.tune.show import format_table, load, write_best_config, write_charts
    from cplugins.tune.storage import default_storage

    if not args.study_to_show:
        return _error("cplugins tune show STUDY: give the study name")
    storage = args.storage or default_storage(
        args.work_dir or osp.join("work_dirs", "tune", args.study_to_show))
    study = load(args.study_to_show, storage)
    print(format_table(study))
    if args.render_best:
        write_best_config(study, args.render_best)
        print(f"wrote {args.render_best} (best trial {study.best_trial.number})",
              file=sys.stderr)
    if args.charts:
        for name, reason in write_charts(study, args.charts).items():
            path = osp.join(args.charts, name)
            print(f"wrote {path}" if not reason else f"skipped {path}: {reason}",
                  file=sys.stderr)
    return 0
