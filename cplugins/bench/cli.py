"""``cplugins bench``: time plugin modules against their baselines (arguments and command).

Importing this module imports no torch (``cplugins list`` builds the same parser); the
measurement code is imported when the command runs.
"""
from __future__ import annotations

import argparse
import ast
import copy
import dataclasses
import datetime as _dt
import os
import sys
from pathlib import Path

from cplugins.cases import BenchmarkCase, select

MODES = ("fwd", "fwd+bwd", "infer", "train", "load")
DTYPE_CHOICES = ("fp32", "bf16", "fp16")

EPILOG = """\
NAME is a declared case (see --list; shell patterns such as 'SoftF1Loss*' and 'all' work), or
a .py config: one defining bench_case=dict(...) (the fields of BenchmarkCase), or a detector
config (whole-detector mode: train step and inference on synthetic batches), e.g.

  cplugins bench AugFPN --device cpu --rounds 20
  cplugins bench configs/augfpn/faster-rcnn_r18_augfpn_400i_shapes.py \\
      --baseline-options model.neck.type=FPN --input-size 256 320
  cplugins bench RFA-vs-literal --plugin benchmarks/cases.py
  cplugins bench DeepLake-loading --rounds 7 --workers 0 2   # data loading: samples/s
"""


def _parse_value(text: str) -> object:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_options(items: list[str] | None, flag: str) -> dict:
    """``["a.b=1", "c=FPN"]`` -> ``{"a.b": 1, "c": "FPN"}`` (values as Python literals)."""
    options: dict = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{flag} {item!r}: must look like KEY=VALUE, e.g. "
                             "model.neck.type=FPN")
        options[key] = _parse_value(value)
    return options


def apply_options(cfg: dict, options: dict) -> dict:
    """A copy of the module config ``cfg`` with dotted ``options`` set (``a.b=1``)."""
    cfg = copy.deepcopy(cfg)
    for key, value in options.items():
        node = cfg
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"option {key!r}: {part!r} is not a dict in {cfg!r}")
            node = child
        node[parts[-1]] = value
    return cfg


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``cplugins bench``."""
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="benchmark case names / patterns, 'all', or a .py config")
    parser.add_argument("--list", action="store_true", help="list the declared cases and exit")
    parser.add_argument("--plugin", action="append", default=[], metavar="FILE|MODULE",
                        help="extra hook module declaring cases (e.g. benchmarks/cases.py)")
    parser.add_argument("--baseline", metavar="NAME",
                        help="compare with this instead: another case, a registered type "
                             "(same arguments), a detector config .py, or 'none'")
    parser.add_argument("--options", nargs="+", default=[], metavar="KEY=VALUE",
                        help="override the module config (or the detector cfg-options)")
    parser.add_argument("--baseline-options", nargs="+", default=[], metavar="KEY=VALUE",
                        help="override the baseline config; with a detector config, its "
                             "cfg-options (e.g. model.neck.type=FPN)")
    parser.add_argument("--device", default="auto",
                        help="cuda, cuda:N or cpu (default: cuda when available)")
    parser.add_argument("--dtype", default="fp32", choices=DTYPE_CHOICES,
                        help="bf16/fp16 run under autocast (mixed precision, as AMP training)")
    parser.add_argument("--channels-last", action="store_true",
                        help="modules and 4-D inputs in channels-last memory format")
    parser.add_argument("--compile", action="store_true", help="torch.compile the modules")
    parser.add_argument("--batch-size", type=int, nargs="+", metavar="N",
                        help="batch sizes to sweep (default: each case's own)")
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"),
                        help="image size for image-like inputs (default: each case's own)")
    parser.add_argument("--mode", action="append", choices=MODES, dest="modes",
                        help="only these modes (repeatable; default: all of a case's kind)")
    parser.add_argument("--rounds", type=int, default=10,
                        help="timed rounds (data loading: full passes per loader; default 10)")
    parser.add_argument("--warmup", type=int, default=2,
                        help="warm-up calls (data loading: passes; default 2)")
    parser.add_argument("--workers", type=int, nargs="+", metavar="N",
                        help="dataloader worker counts of data-loading cases (default: each "
                             "case's own, e.g. 0 2)")
    parser.add_argument("--timer", default="auto", choices=("auto", "events", "sync", "process"),
                        help="GPU: CUDA events (auto) or synchronized perf_counter; CPU: "
                             "perf_counter (auto) or process CPU time (shared machines, with "
                             "--threads 1)")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0, help="input / init seed")
    parser.add_argument("--no-memory", action="store_true", help="skip peak memory")
    parser.add_argument("--no-flops", action="store_true", help="skip FLOP counting")
    parser.add_argument("--no-peak", action="store_true", help="skip the matmul peak")
    parser.add_argument("--peak-size", type=int, help="matmul peak n (default 8192 GPU, "
                                                      "1024 CPU)")
    parser.add_argument("--profile", action="store_true",
                        help="also profile one call per workload (kernel launches, GPU busy "
                             "share, top kernels / ops)")
    parser.add_argument("--out", metavar="DIR",
                        help="where bench.json and bench.png go (default "
                             "work_dirs/bench/<timestamp>)")
    parser.add_argument("--no-chart", action="store_true", help="no PNG chart")
    parser.add_argument("--quiet", action="store_true", help="no progress display")


def _detector_case_from_config(path: str, cfg, args: argparse.Namespace) -> BenchmarkCase:
    options = parse_options(args.options, "--options")
    base_options = parse_options(args.baseline_options, "--baseline-options")
    baseline_config = None
    if args.baseline and args.baseline.lower() != "none":
        if not args.baseline.endswith(".py"):
            raise ValueError(f"--baseline {args.baseline!r}: with a detector config, give "
                             "another config .py (or --baseline-options KEY=VALUE)")
        baseline_config = args.baseline
    has_baseline = bool(base_options) or baseline_config is not None
    if args.baseline and args.baseline.lower() == "none":
        has_baseline = False
    size = tuple(args.input_size) if args.input_size else None
    if size is None and cfg.get("synthetic_data", {}).get("image_size"):
        size = tuple(cfg.synthetic_data["image_size"])
    batch = (cfg.get("train_dataloader") or {}).get("batch_size", 2)
    label = Path(path).stem
    if has_baseline:
        where = Path(baseline_config).stem if baseline_config else "baseline"
        described = ", ".join(f"{k}={v}" for k, v in base_options.items())
        base_label = f"{where}({described})" if described else where
    else:
        base_label = ""
    return BenchmarkCase(
        name=label, module=options, kind="detector", config=path,
        inputs=dict(generator="detection_batch", image_size=size or (800, 1216), batch=batch,
                    num_gt=8),
        baseline=base_options if has_baseline else None, baseline_label=base_label,
        baseline_config=baseline_config, scope=cfg.get("default_scope", "mmdet"),
        needs_ops=True, provider=path, description=f"whole detector of {path}")


def cases_from_config(path: str, args: argparse.Namespace) -> BenchmarkCase:
    """A case from a .py config: ``bench_case = dict(...)`` or a detector config."""
    from mmengine.config import Config

    if not os.path.isfile(path):
        raise ValueError(f"NAME {path!r}: no such config file")
    cfg = Config.fromfile(path)
    if "bench_case" in cfg:
        fields = cfg.bench_case.to_dict() if hasattr(cfg.bench_case, "to_dict") \
            else dict(cfg.bench_case)
        fields.setdefault("name", Path(path).stem)
        fields.pop("provider", None)
        allowed = {f.name for f in dataclasses.fields(BenchmarkCase)} - {"provider"}
        unknown = sorted(set(fields) - allowed)
        missing = sorted({"module", "inputs"} - set(fields))
        if unknown or missing:
            raise ValueError(f"NAME {path!r}: bench_case has unknown fields {unknown} / lacks "
                             f"{missing}; allowed: {', '.join(sorted(allowed))}")
        return BenchmarkCase(**fields, provider=path)
    if "model" in cfg:
        return _detector_case_from_config(path, cfg, args)
    raise ValueError(f"NAME {path!r}: the config defines neither bench_case=dict(...) nor "
                     "a model")


def override_baseline(case: BenchmarkCase, baseline: str | None,
                      cases: list[BenchmarkCase], base_options: dict) -> BenchmarkCase:
    """``case`` with ``--baseline`` / ``--baseline-options`` applied (a detector case takes a
    config ``.py`` or ``none``; its ``--baseline-options`` are merged by the caller)."""
    if case.kind == "dataloader":
        if baseline is not None and baseline.lower() != "none":
            raise ValueError(f"--baseline {baseline!r}: case {case.name!r} is a dataloader "
                             "case; give 'none' or --baseline-options KEY=VALUE")
        if baseline is not None:
            return dataclasses.replace(case, baseline=None, baseline_label="")
        if base_options:
            if case.baseline is None:
                raise ValueError(f"--baseline-options: case {case.name!r} has no baseline")
            case = dataclasses.replace(case, baseline=apply_options(case.baseline,
                                                                    base_options))
        return case
    if case.kind != "module":
        if baseline is None:
            return case
        if baseline.lower() == "none":
            return dataclasses.replace(case, baseline=None, baseline_label="",
                                       baseline_config=None)
        if not baseline.endswith(".py"):
            raise ValueError(f"--baseline {baseline!r}: case {case.name!r} is a detector case; "
                             "give a detector config .py, 'none', or --baseline-options")
        return dataclasses.replace(case, baseline=case.baseline or {}, baseline_config=baseline,
                                   baseline_label=Path(baseline).stem)
    if baseline is not None:
        if baseline.lower() == "none":
            return dataclasses.replace(case, baseline=None, baseline_label="", weight_sync=None,
                                       equivalent=False)
        other = next((c for c in cases if c.name == baseline), None)
        if other is not None:
            if other.kind != "module":
                raise ValueError(f"--baseline {baseline!r} is a {other.kind} case; a module "
                                 "case needs a module baseline")
            cfg, label = other.module, other.label
        else:
            cfg, label = dict(case.module, type=baseline), baseline.rpartition(":")[2]
        case = dataclasses.replace(case, baseline=cfg, baseline_label=label, weight_sync=None,
                                   equivalent=False)
    if base_options:
        if case.baseline is None:
            raise ValueError(f"--baseline-options: case {case.name!r} has no baseline")
        case = dataclasses.replace(case, baseline=apply_options(case.baseline, base_options))
    return case


def _list(cases: list[BenchmarkCase]) -> str:
    lines = []
    for case in cases:
        base = case.baseline_label or "-"
        where = f"config {case.config}" if case.kind == "detector" else f"scope {case.scope}"
        if case.kind == "dataloader":
            where += f"; workers {', '.join(map(str, case.workers))}"
        lines.append(f"{case.name:<26} {case.kind:<8} {case.label} vs {base}  "
                     f"[{case.generator}; {where}; {case.provider}]")
        if case.description:
            lines.append(f"{'':<26} {case.description}")
    return "\n".join(lines) or "no benchmark cases declared"


def run_command(args: argparse.Namespace) -> int:
    """``cplugins bench``: resolve cases, run them, print the table, write JSON and PNG."""
    from cplugins.bench.collect import collect_cases

    try:
        declared, _owners, errors = collect_cases(args.plugin)
        for error in errors:
            print(f"warning: benchmark cases of {error}", file=sys.stderr)
        if args.list:
            print(_list(declared))
            return 0
        if not args.names:
            raise ValueError("give at least one NAME (a case, a pattern, 'all' or a config "
                             ".py); --list shows the declared cases")
        module_options = parse_options(args.options, "--options")
        base_options = parse_options(args.baseline_options, "--baseline-options")
        chosen: list[BenchmarkCase] = []
        for name in args.names:
            if name.endswith(".py"):
                case = cases_from_config(name, args)
                if case.kind == "detector" and case.config == name:  # options applied there
                    chosen.append(case)
                    continue
                matched = [case]  # a bench_case: --options / --baseline as a declared case
            else:
                matched = select(declared, [name])
            for case in matched:
                if module_options:
                    case = dataclasses.replace(case, module=(
                        {**case.module, **module_options} if case.kind == "detector"
                        else apply_options(case.module, module_options)))
                if case.kind == "detector" and base_options:
                    case = dataclasses.replace(case, baseline={**(case.baseline or {}),
                                                               **base_options})
                chosen.append(override_baseline(case, args.baseline, declared, base_options))
        return _run(chosen, args)
    except ValueError as exc:
        print(f"cplugins bench: error: {exc}", file=sys.stderr)
        return 2


def _run(cases: list[BenchmarkCase], args: argparse.Namespace) -> int:
    from cplugins.bench import report
    from cplugins.bench.runner import Settings, run

    device = args.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    settings = Settings(
        device=device, dtype=args.dtype, channels_last=args.channels_last,
        compile=args.compile, batch_sizes=tuple(args.batch_size or (None,)),
        input_size=tuple(args.input_size) if args.input_size else None, rounds=args.rounds,
        warmup=args.warmup, modes=tuple(args.modes) if args.modes else None, timer=args.timer,
        seed=args.seed, memory=not args.no_memory, flops=not args.no_flops,
        peak=not args.no_peak, peak_size=args.peak_size, threads=args.threads,
        profile=args.profile, workers=tuple(args.workers) if args.workers else None)
    out = Path(args.out or os.path.join(
        "work_dirs", "bench", _dt.datetime.now().strftime("%Y%m%d-%H%M%S")))
    record = run(cases, settings, quiet=args.quiet, command=list(sys.argv))
    print(report.format_table(record))
    json_path = report.write_json(record, out / "bench.json")
    print(f"\nJSON record: {json_path}")
    if not args.no_chart:
        chart = report.write_chart(record, out / "bench.png")
        if chart is not None:
            print(f"chart: {chart}")
    return 1 if any(r.get("status") == "error" for r in record["results"]) else 0
