"""AugFPN ablation on the multi-scale synthetic shapes: FPN, +RFA, +RFA+CS, full AugFPN.

    python tools/augfpn_ablation.py --work-root /tmp/ablation              # everything
    python tools/augfpn_ablation.py --steps train                          # only train + evaluate
    python tools/augfpn_ablation.py --steps timing table                   # only time, table
    python tools/augfpn_ablation.py --steps table --update-readme necks/augfpn/README.md

Every variant is trained with ``tools/train.py`` for every seed (``--seeds``, default 0-4, the
same seeds for every variant), one run after the other, as separate processes. A run's metrics
(mmdet's CocoMetric on the validation split: bbox mAP, AP small/medium/large) are those of the
training's final validation, read from its ``vis_data/scalars.json`` into
``WORK_DIR/metrics.json``; ``--steps test`` evaluates the checkpoint again with
``tools/test.py`` where no metrics exist. Finished runs are skipped unless ``--force``, so an
interrupted ablation resumes where it stopped.

``timing`` builds the four models in one process and times them interleaved (round-robin), so
that a busy machine slows all of them alike: the median over ``--repeats`` rounds of one
training step (``model.train_step`` on a fixed batch of two training images, optimizer
included) and of single-image inference (``model.test_step``). ``table`` reports per variant
the mean and standard deviation over the seeds, and per AugFPN variant the paired difference to
FPN (same seed) with a 95 % t-interval over the seeds. Results go to ``WORK_ROOT/results.json``
and ``WORK_ROOT/table.md``; ``--update-readme`` replaces the text between the
``<!-- augfpn-ablation:begin -->`` / ``<!-- augfpn-ablation:end -->`` markers of that file.
"""
from __future__ import annotations

import argparse
import glob
import json
import math
import os
import os.path as osp
import platform
import shlex
import statistics
import subprocess
import sys
from datetime import datetime, timezone

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: (label, config) in table order; the first is the baseline of the time ratios
VARIANTS: list[tuple[str, str]] = [
    ("FPN (baseline)", "configs/augfpn/faster-rcnn_r18-w32_fpn_150i_shapes-multiscale128.py"),
    ("+RFA", "configs/augfpn/faster-rcnn_r18-w32_augfpn-rfa_150i_shapes-multiscale128.py"),
    ("+RFA+CS", "configs/augfpn/faster-rcnn_r18-w32_augfpn-rfa-cs_150i_shapes-multiscale128.py"),
    ("+RFA+CS+SRS (AugFPN)",
     "configs/augfpn/faster-rcnn_r18-w32_augfpn_150i_shapes-multiscale128.py"),
]
#: metric (key in results) -> CocoMetric key; -1 (no object of that size) is read as missing
METRICS: dict[str, str] = {
    "mAP": "coco/bbox_mAP",
    "AP_s": "coco/bbox_mAP_s",
    "AP_m": "coco/bbox_mAP_m",
    "AP_l": "coco/bbox_mAP_l",
    "mAP_50": "coco/bbox_mAP_50",
}
#: two-sided 95 % quantiles of Student's t (0.975) for 1..30 degrees of freedom, used when
#: scipy is not installed
T_975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042]
#: the paper's COCO test-dev numbers (Faster R-CNN R-50, 1x), as the authors' repository
#: reports them
PAPER = {"FPN": 36.5, "AugFPN": 38.8}
STEPS = ("train", "test", "timing", "table")
BEGIN, END = "<!-- augfpn-ablation:begin -->", "<!-- augfpn-ablation:end -->"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="AugFPN ablation on the synthetic shapes")
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS))
    parser.add_argument("--work-root", default="work_dirs/augfpn_ablation")
    parser.add_argument("--force", action="store_true", help="redo steps whose output exists")
    parser.add_argument("--repeats", type=int, default=5, help="timing rounds (median)")
    parser.add_argument("--images", type=int, default=8, help="validation images timed")
    parser.add_argument("--threads", type=int, default=1,
                        help="intra-op threads of every run and of the timing (OMP_NUM_THREADS); "
                             "1 by default: on a shared 2-core machine 2 threads were ~5x slower")
    parser.add_argument("--update-readme", metavar="README", help="rewrite the marked table")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4],
                        help="training seeds (randomness.seed), the same for every variant; "
                             "the table averages over them (default: 0 1 2 3 4)")
    parser.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE",
                        help="passed to every train/test run (e.g. a shorter schedule)")
    args = parser.parse_args(argv)
    for name in ("repeats", "images", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if any(seed < 0 for seed in args.seeds) or len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds must be distinct integers >= 0, got {args.seeds}")
    if args.update_readme and not osp.isfile(args.update_readme):
        parser.error(f"--update-readme: {args.update_readme} is not a file")
    return args


def _name(config: str) -> str:
    return osp.splitext(osp.basename(config))[0]


def _work_dir(args: argparse.Namespace, config: str, seed: int) -> str:
    """``WORK_ROOT/<config>`` for seed 0 (the configs' seed), ``..._seed<S>`` otherwise."""
    suffix = "" if seed == 0 else f"_seed{seed}"
    return osp.join(args.work_root, _name(config) + suffix)


def _run(command: list[str], threads: int) -> None:
    print("+", " ".join(command), flush=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    returncode = subprocess.run(command, cwd=REPO, env=env).returncode
    if returncode:
        raise SystemExit(f"error: {' '.join(command)} exited with status {returncode} "
                         "(its output is above); rerun to resume after the finished runs")


def _checkpoint(work_dir: str) -> str | None:
    last = osp.join(work_dir, "last_checkpoint")
    if osp.isfile(last):
        with open(last) as f:
            path = f.read().strip()
        if osp.isfile(path):
            return path
    return None


def train_and_test(args: argparse.Namespace) -> None:
    """``tools/train.py`` then ``tools/test.py`` for each seed and variant, sequentially."""
    for seed in args.seeds:
        for _, config in VARIANTS:
            _train_and_test_one(args, config, seed)


def _train_and_test_one(args: argparse.Namespace, config: str, seed: int) -> None:
    work_dir = _work_dir(args, config, seed)
    options = [*args.cfg_options, f"randomness.seed={seed}"]
    extra = ["--cfg-options", *options]
    metrics = osp.join(work_dir, "metrics.json")
    if "train" in args.steps and (args.force or _checkpoint(work_dir) is None
                                  or not osp.isfile(metrics)):
        import torch

        from cplugins.bench.measure import Timer  # the one timer of cplugins (milliseconds)

        # the data check decodes a sample of the images (the generator's manifest vouches for
        # the rest); the full check of every image would cost each run seconds
        milliseconds = Timer(torch.device("cpu"))(lambda: _run(
            [sys.executable, "tools/train.py", config, "--work-dir", work_dir, "--no-progress",
             "--data-check-sample", "32", *extra], args.threads))
        with open(osp.join(work_dir, "train_wall_s.json"), "w") as f:
            json.dump({"wall_s": milliseconds / 1e3}, f)
        final = final_validation(work_dir)
        if final:
            with open(metrics, "w") as f:
                json.dump(final, f, indent=2)
    if "test" in args.steps and (args.force or not osp.isfile(metrics)):
        checkpoint = _checkpoint(work_dir)
        if checkpoint is None:
            raise SystemExit(f"{config}: no checkpoint in {work_dir}; run --steps train")
        _run([sys.executable, "tools/test.py", config, checkpoint, "--work-dir", work_dir,
              "--out", metrics, *extra], args.threads)


def final_validation(work_dir: str) -> dict:
    """The ``coco/*`` metrics of the last validation in the latest ``*/vis_data/scalars.json``
    of ``work_dir`` (empty when none ran)."""
    found = sorted(glob.glob(osp.join(work_dir, "*", "vis_data", "scalars.json")))
    last: dict = {}
    if found:
        with open(found[-1]) as f:
            for line in f:
                entry = json.loads(line)
                if any(key.startswith("coco/") for key in entry):
                    last = {k: v for k, v in entry.items() if k.startswith("coco/")}
    return last


def timing(args: argparse.Namespace) -> dict:
    """Median train-step and single-image inference time of each variant (interleaved)."""
    import cplugins.compat

    # like tools/train.py: this repository's tools opt in to the compatibility fixes, before
    # torch / torchvision / mmdet are imported (torchvision's ops fail to load here otherwise)
    cplugins.compat.apply()
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, osp.join(REPO, "tools"))
    import common  # noqa: F401  (cplugins.all first: plugins and compat fixes)
    from mmdet.registry import DATASETS, MODELS
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope

    from cplugins.training.prepare import prepare_for_training

    init_default_scope("mmdet")
    models, wrappers = [], []
    train_batch = val_items = None
    for _, config in VARIANTS:
        cfg = prepare_for_training(osp.join(REPO, config), cfg_options=args.cfg_options,
                                   progress=False)
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        model.init_weights()
        models.append(model)
        wrappers.append(build_optim_wrapper(model, cfg.optim_wrapper))
        if train_batch is None:  # every variant reads the same data
            train_set = DATASETS.build(cfg.train_dataloader.dataset)
            val_set = DATASETS.build(cfg.val_dataloader.dataset)
            train_batch = pseudo_collate([train_set[0], train_set[1]])
            val_items = [pseudo_collate([val_set[i]]) for i in range(min(args.images,
                                                                           len(val_set)))]
    from cplugins.bench.measure import Timer  # the one timer of cplugins (milliseconds)

    timer = Timer(torch.device("cpu"))
    step_times: list[list[float]] = [[] for _ in models]
    image_times: list[list[float]] = [[] for _ in models]
    for model, wrapper in zip(models, wrappers):  # warm-up (allocators, operator caches)
        model.train()
        model.train_step(train_batch, wrapper)
    for round_ in range(args.repeats):
        for i, (model, wrapper) in enumerate(zip(models, wrappers)):
            model.train()
            milliseconds = timer(lambda m=model, w=wrapper: m.train_step(train_batch, w))
            step_times[i].append(milliseconds / 1e3)
        print(f"timing: train round {round_ + 1}/{args.repeats}", flush=True)
    for model in models:
        model.eval()
        model.test_step(val_items[0])
    for item in val_items:
        for i, model in enumerate(models):
            milliseconds = timer(lambda m=model, x=item: m.test_step(x))
            image_times[i].append(milliseconds / 1e3)
    print(f"timing: inference on {len(val_items)} images done", flush=True)
    return {
        "repeats": args.repeats,
        "images": len(val_items),
        "image_size": "x".join(str(v) for v in train_batch["inputs"][0].shape[-2:]),
        "threads": torch.get_num_threads(),
        "train_step_s": [statistics.median(t) for t in step_times],
        "train_step_all_s": step_times,
        "inference_s": [statistics.median(t) for t in image_times],
        "inference_all_s": image_times,
        "params": [sum(p.numel() for p in m.parameters()) for m in models],
        "params_inference": [
            sum(p.numel() for n, p in m.named_parameters() if "aux_" not in n) for m in models
        ],
    }


def _load_load() -> str:
    try:
        return ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (scipy when installed,
    else :data:`T_975`; 1.96 beyond 30)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    try:
        from scipy import stats
    except ImportError:
        return T_975[df - 1] if df <= len(T_975) else 1.96
    return float(stats.t.ppf(0.975, df))


def summary(values: list[float]) -> dict:
    """Mean, sample standard deviation (n - 1) and count of ``values`` (None when empty)."""
    n = len(values)
    return {"mean": statistics.mean(values) if n else None,
            "std": statistics.stdev(values) if n > 1 else None, "n": n}


def paired_difference(baseline: dict[int, float], other: dict[int, float]) -> dict:
    """``other - baseline`` over the seeds both have: mean and 95 % t-interval.

    ``d_s = other[s] - baseline[s]``; ``mean(d) +- t(0.975, n - 1) * sd(d) / sqrt(n)``.
    Returns ``mean``, ``low``, ``high``, ``n``, ``seeds``; low/high are None for n < 2.
    """
    seeds = sorted(set(baseline) & set(other))
    diffs = [other[s] - baseline[s] for s in seeds]
    n = len(diffs)
    if n == 0:
        return {"mean": None, "low": None, "high": None, "n": 0, "seeds": []}
    mean = statistics.mean(diffs)
    if n < 2:
        return {"mean": mean, "low": None, "high": None, "n": 1, "seeds": seeds}
    half = t_quantile_975(n - 1) * statistics.stdev(diffs) / math.sqrt(n)
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n, "seeds": seeds}


def _read_metrics(path: str) -> dict[str, float | None]:
    with open(path) as f:
        raw = json.load(f)
    values: dict[str, float | None] = {}
    for key, coco_key in METRICS.items():
        value = raw.get(coco_key)
        values[key] = None if value is None or value < 0 else float(value)
    return values


def collect(args: argparse.Namespace, times: dict | None) -> dict:
    """Per-seed metrics of every variant, their summaries and paired differences to FPN."""
    from cplugins.bench.measure import cpu_name  # (imports torch)

    rows = []
    for label, config in VARIANTS:
        row: dict = {"variant": label, "config": config, "per_seed": {}, "train_wall_s": []}
        for seed in args.seeds:
            work_dir = _work_dir(args, config, seed)
            metrics = osp.join(work_dir, "metrics.json")
            if not osp.isfile(metrics):
                continue
            row["per_seed"][str(seed)] = _read_metrics(metrics)
            wall = osp.join(work_dir, "train_wall_s.json")
            if osp.isfile(wall):
                with open(wall) as f:
                    row["train_wall_s"].append(json.load(f)["wall_s"])
        rows.append(row)
    return {"rows": rows, "timing": times, "seeds": list(args.seeds),
            "cfg_options": list(args.cfg_options), "threads": args.threads,
            "machine": platform.platform(), "processor": cpu_name(), "cpus": os.cpu_count(),
            "loadavg_at_end": _load_load(),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def _series(row: dict, key: str) -> dict[int, float]:
    return {int(seed): m[key] for seed, m in row["per_seed"].items() if m.get(key) is not None}


def statistics_of(results: dict) -> list[dict]:
    """Per row: ``summary`` per metric and ``vs_baseline`` paired differences (not for row 0)."""
    base = results["rows"][0]
    out = []
    for i, row in enumerate(results["rows"]):
        stats = {"summary": {k: summary(list(_series(row, k).values())) for k in METRICS}}
        if i:
            stats["vs_baseline"] = {k: paired_difference(_series(base, k), _series(row, k))
                                    for k in METRICS}
        out.append(stats)
    return out


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _mean_std(s: dict) -> str:
    if s["mean"] is None:
        return "n/a"
    return _fmt(s["mean"]) + ("" if s["std"] is None else f" ± {_fmt(s['std'])}")


def _diff(d: dict) -> str:
    if d["mean"] is None:
        return "n/a"
    if d["low"] is None:
        return f"{d['mean']:+.3f}"
    return f"{d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]"


def table(results: dict) -> str:
    """The Markdown tables (and their footnote) of ``results``."""
    times = results.get("timing")
    stats = statistics_of(results)
    lines = [
        "| variant | bbox mAP | AP small | AP medium | AP large | mAP@0.5 | train step vs FPN "
        "| inference vs FPN | train run (min) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for i, (row, st) in enumerate(zip(results["rows"], stats)):
        cells = [row["variant"]] + [_mean_std(st["summary"][k])
                                    for k in ("mAP", "AP_s", "AP_m", "AP_l", "mAP_50")]
        if times:
            step, image = times["train_step_s"], times["inference_s"]
            cells += [f"{step[i] / step[0]:.2f}x ({step[i]:.2f} s)",
                      f"{image[i] / image[0]:.2f}x ({image[i]:.3f} s)"]
        else:
            cells += ["n/a", "n/a"]
        walls = row["train_wall_s"]
        cells.append(f"{statistics.mean(walls) / 60:.1f}" if walls else "n/a")
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Paired difference to FPN (same seed), mean and 95 % confidence interval "
        "(t-interval over the seeds):",
        "",
        "| variant | Δ bbox mAP | Δ AP small | Δ AP medium | Δ AP large | seeds |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row, st in zip(results["rows"][1:], stats[1:]):
        d = st["vs_baseline"]
        lines.append("| " + " | ".join([row["variant"]] + [_diff(d[k]) for k in
                                        ("mAP", "AP_s", "AP_m", "AP_l")] + [str(d["mAP"]["n"])])
                     + " |")
    lines += [
        "",
        "For comparison, the paper's numbers (COCO test-dev, Faster R-CNN R-50, 1x schedule, as "
        f"the authors' repository reports them): FPN {PAPER['FPN']} AP, AugFPN "
        f"{PAPER['AugFPN']} AP ({PAPER['AugFPN'] - PAPER['FPN']:+.1f}).",
    ]
    seeds = results.get("seeds") or sorted({int(s) for r in results["rows"]
                                            for s in r["per_seed"]})
    note = (f"\nMean ± standard deviation over training seeds {seeds}; AP small / medium / "
            "large: COCO's area ranges (< 32², 32²-96², > 96² px), n/a where the validation "
            f"set has no such object. Measured {results['date']} on {results['machine']} "
            f"({results.get('processor', 'unknown CPU')}, {results['cpus']} CPUs, shared with "
            f"other jobs; load average at the end {results['loadavg_at_end']}), one run at a "
            f"time, torch threads: {results.get('threads', 1)}.")
    if results.get("command"):
        note += f" Command: `{results['command']}`."
    if results.get("cfg_options"):
        note += f" Config overrides: `{' '.join(results['cfg_options'])}`."
    if times:
        note += (f" Times: medians over {times['repeats']} interleaved rounds (train step, "
                 f"batch of 2 training images at {times.get('image_size', 'n/a')}) and "
                 f"{times['images']} validation images (inference, batch 1), torch threads: "
                 f"{times['threads']}; train run: wall time of one `tools/train.py` run "
                 "(start-up, training, final validation), mean over the seeds.")
    return "\n".join(lines) + "\n" + note + "\n"


def update_readme(path: str, text: str) -> None:
    with open(path) as f:
        content = f.read()
    if BEGIN not in content or END not in content:
        raise SystemExit(f"{path}: markers {BEGIN} / {END} not found")
    head, rest = content.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    with open(path, "w") as f:
        f.write(f"{head}{BEGIN}\n{text}{END}{tail}")


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    os.makedirs(args.work_root, exist_ok=True)
    if "train" in args.steps or "test" in args.steps:
        train_and_test(args)
    timing_path = osp.join(args.work_root, "timing.json")
    times = None
    if "timing" in args.steps and (args.force or not osp.isfile(timing_path)):
        times = timing(args)
        with open(timing_path, "w") as f:
            json.dump(times, f, indent=2)
    elif osp.isfile(timing_path):
        with open(timing_path) as f:
            times = json.load(f)
    results = collect(args, times)
    given = sys.argv[1:] if argv is None else argv
    results["command"] = " ".join(["python tools/augfpn_ablation.py",
                                   *(shlex.quote(a) for a in given)])
    with open(osp.join(args.work_root, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    if "table" in args.steps:
        text = table(results)
        with open(osp.join(args.work_root, "table.md"), "w") as f:
            f.write(text)
        print(text)
        if args.update_readme:
            update_readme(args.update_readme, text)
    return results


if __name__ == "__main__":
    main()
