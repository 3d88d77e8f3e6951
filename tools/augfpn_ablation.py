"""AugFPN ablation on the synthetic shapes: train, evaluate and time FPN, +RFA, +RFA+CS, full.

    python tools/augfpn_ablation.py                       # everything (hours on a busy 2-core CPU)
    python tools/augfpn_ablation.py --steps train test    # only (re)train / evaluate
    python tools/augfpn_ablation.py --steps timing table  # only time and (re)write the table
    python tools/augfpn_ablation.py --update-readme necks/augfpn/README.md

Each variant is trained with ``tools/train.py`` and evaluated with ``tools/test.py`` (mmdet's
CocoMetric on the shapes validation split) as separate processes, one after the other; a step
whose output already exists is skipped unless ``--force``. ``timing`` builds the four models in
one process and times them interleaved (round-robin), so that a busy machine slows all of them
alike: the median over ``--repeats`` rounds of one training step (``model.train_step`` on a
fixed batch of two training images, optimizer included) and of single-image inference
(``model.test_step``, one validation image at a time). Results go to ``WORK_ROOT/results.json``
and ``WORK_ROOT/table.md``; ``--update-readme`` replaces the text between the
``<!-- augfpn-ablation:begin -->`` / ``<!-- augfpn-ablation:end -->`` markers of that file.
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: (label, config) in table order; the first is the baseline of the time ratios
VARIANTS: list[tuple[str, str]] = [
    ("FPN (baseline)", "configs/augfpn/faster-rcnn_r18_fpn_300i_shapes.py"),
    ("+RFA", "configs/augfpn/faster-rcnn_r18_augfpn-rfa_300i_shapes.py"),
    ("+RFA+CS", "configs/augfpn/faster-rcnn_r18_augfpn-rfa-cs_300i_shapes.py"),
    ("+RFA+CS+SRS (AugFPN)", "configs/augfpn/faster-rcnn_r18_augfpn_300i_shapes.py"),
]
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
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="training seeds (randomness.seed); the table averages over them")
    parser.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE",
                        help="passed to every train/test run (e.g. a shorter schedule)")
    args = parser.parse_args(argv)
    for name in ("repeats", "images", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if any(seed < 0 for seed in args.seeds) or len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds must be distinct integers >= 0, got {args.seeds}")
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
    subprocess.run(command, cwd=REPO, check=True, env=env)


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
    if "train" in args.steps and (args.force or _checkpoint(work_dir) is None):
        start = time.time()
        _run([sys.executable, "tools/train.py", config, "--work-dir", work_dir, *extra],
             args.threads)
        with open(osp.join(work_dir, "train_wall_s.json"), "w") as f:
            json.dump({"wall_s": time.time() - start}, f)
    metrics = osp.join(work_dir, "metrics.json")
    if "test" in args.steps and (args.force or not osp.isfile(metrics)):
        checkpoint = _checkpoint(work_dir)
        if checkpoint is None:
            raise SystemExit(f"{config}: no checkpoint in {work_dir}; run --steps train")
        _run([sys.executable, "tools/test.py", config, checkpoint, "--work-dir", work_dir,
              "--out", metrics, *extra], args.threads)


def timing(args: argparse.Namespace) -> dict:
    """Median train-step and single-image inference time of each variant (interleaved)."""
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, osp.join(REPO, "tools"))
    from common import prepare_config  # imports cplugins.all (compat fixes) first
    from mmdet.registry import DATASETS, MODELS
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope

    init_default_scope("mmdet")
    models, wrappers = [], []
    train_batch = val_items = None
    for _, config in VARIANTS:
        cfg = prepare_config(osp.join(REPO, config), args.cfg_options, None, "none",
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
    step_times: list[list[float]] = [[] for _ in models]
    image_times: list[list[float]] = [[] for _ in models]
    for model, wrapper in zip(models, wrappers):  # warm-up (allocators, operator caches)
        model.train()
        model.train_step(train_batch, wrapper)
    for round_ in range(args.repeats):
        for i, (model, wrapper) in enumerate(zip(models, wrappers)):
            model.train()
            start = time.perf_counter()
            model.train_step(train_batch, wrapper)
            step_times[i].append(time.perf_counter() - start)
        print(f"timing: train round {round_ + 1}/{args.repeats}", flush=True)
    for model in models:
        model.eval()
        model.test_step(val_items[0])
    for item in val_items:
        for i, model in enumerate(models):
            start = time.perf_counter()
            model.test_step(item)
            image_times[i].append(time.perf_counter() - start)
    print(f"timing: inference on {len(val_items)} images done", flush=True)
    return {
        "repeats": args.repeats,
        "images": len(val_items),
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


def collect(args: argparse.Namespace, times: dict | None) -> dict:
    """Metrics of every variant (from ``tools/test.py --out``) plus the timing results."""
    rows = []
    for label, config in VARIANTS:
        row = {"variant": label, "config": config, "seeds": [], "mAP_all": [],
               "mAP_50_all": [], "train_wall_s": []}
        for seed in args.seeds:
            work_dir = _work_dir(args, config, seed)
            metrics = osp.join(work_dir, "metrics.json")
            if not osp.isfile(metrics):
                continue
            with open(metrics) as f:
                m = json.load(f)
            row["seeds"].append(seed)
            row["mAP_all"].append(m.get("coco/bbox_mAP"))
            row["mAP_50_all"].append(m.get("coco/bbox_mAP_50"))
            wall = osp.join(work_dir, "train_wall_s.json")
            if osp.isfile(wall):
                with open(wall) as f:
                    row["train_wall_s"].append(json.load(f)["wall_s"])
        for key in ("mAP", "mAP_50"):
            values = [v for v in row[f"{key}_all"] if v is not None]
            row[key] = statistics.mean(values) if values else None
        rows.append(row)
    return {"rows": rows, "timing": times, "machine": platform.platform(),
            "cpus": os.cpu_count(), "loadavg_at_end": _load_load(),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _metric(row: dict, key: str) -> str:
    """Mean over the seeds, with the per-seed values when there are several."""
    values = row.get(f"{key}_all", [])
    if len(values) <= 1:
        return _fmt(row.get(key))
    return f"{_fmt(row.get(key))} ({', '.join(_fmt(v) for v in values)})"


def table(results: dict) -> str:
    """The Markdown table (and its footnote) of ``results``."""
    times = results.get("timing")
    lines = [
        "| variant | config | bbox mAP | mAP@0.5 | train step (s) | vs FPN | "
        "inference / image (s) | vs FPN | params (train / inference) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for i, row in enumerate(results["rows"]):
        cells = [row["variant"], f"`{osp.basename(row['config'])}`",
                 _metric(row, "mAP"), _metric(row, "mAP_50")]
        if times:
            step, image = times["train_step_s"], times["inference_s"]
            params = times["params"][i] / 1e6, times["params_inference"][i] / 1e6
            cells += [_fmt(step[i], 2), f"{step[i] / step[0]:.2f}x",
                      _fmt(image[i], 3), f"{image[i] / image[0]:.2f}x",
                      f"{params[0]:.2f}M / {params[1]:.2f}M"]
        else:
            cells += ["n/a"] * 5
        lines.append("| " + " | ".join(cells) + " |")
    seeds = sorted({s for row in results["rows"] for s in row["seeds"]})
    note = (f"\nmAP: mean over training seeds {seeds} (per seed in parentheses when several). "
            f"Measured {results['date']} on {results['machine']} ({results['cpus']} CPUs, "
            f"shared; load average at the end {results['loadavg_at_end']}).")
    if times:
        note += (f" Times: medians over {times['repeats']} interleaved rounds (train step, "
                 f"batch of 2 images at 256x320) and {times['images']} validation images "
                 f"(inference, batch 1), torch threads: {times['threads']}.")
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
