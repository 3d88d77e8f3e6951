"""Data-loading throughput: the full mmdet train pipeline from a Deep Lake copy vs the COCO folder.

    python benchmarks/deeplake_loading.py [--images 32] [--size 256 320] [--passes 5]
        [--workers 0 2] [--out results.json]

The same synthetic shapes images (PNG) as a COCO folder and converted to Deep Lake
(``cplugins data convert``), the same pipeline (LoadImage*, LoadAnnotations, Resize,
RandomFlip 0.5, PackDetInputs), mmengine-built DataLoaders (batch 2, DefaultSampler in order,
the same seed: the same flips). Per worker count, the two loaders run interleaved (A B, B A,
...) after one warm-up pass each; persistent workers, so worker start-up is not timed. Prints
samples/s (wall clock) and the median of the per-pass ratios Deep Lake / COCO folder, and the
same ratio by the main process's CPU time (meaningful with 0 workers).
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def _pipeline(load: str, size: tuple[int, int]) -> list[dict]:
    return [dict(type=load), dict(type="LoadAnnotations", with_bbox=True),
            dict(type="Resize", scale=(size[1], size[0]), keep_ratio=True),
            dict(type="RandomFlip", prob=0.5), dict(type="PackDetInputs")]


def build_loaders(root: Path, images: int, size: tuple[int, int], workers: int) -> dict:
    """``{'coco': DataLoader, 'deeplake': DataLoader}`` over the same ``images`` images."""
    import cplugins_deeplake  # noqa: F401  (registers the dataset and the transform)
    from cplugins_deeplake.convert import convert
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    from cplugins.data.shapes import make_shapes_detection

    coco = make_shapes_detection(root / "coco", num_train=images, num_val=1, image_size=size,
                                 seed=0)
    if not (root / "deeplake" / "train").exists():
        convert(coco["data_root"], str(root / "deeplake"), "deeplake", progress=False)
    init_default_scope("mmdet")
    datasets = {
        "coco": dict(type="CocoDataset", **coco["train"],
                     pipeline=_pipeline("LoadImageFromFile", size)),
        "deeplake": dict(type="DeepLakeDetDataset", path=str(root / "deeplake" / "train"),
                         pipeline=_pipeline("LoadImageFromDeepLake", size))}
    return {name: Runner.build_dataloader(dict(
        batch_size=2, num_workers=workers, persistent_workers=workers > 0,
        sampler=dict(type="DefaultSampler", shuffle=False), dataset=dataset,
        collate_fn=dict(type="pseudo_collate")), seed=0) for name, dataset in datasets.items()}


def _samples_per_second(loader) -> tuple[float, float]:
    """Samples/s of one pass over ``loader``: by the wall clock, and by this process's CPU
    time (all its threads; the work itself with 0 workers, less disturbed by other processes
    on a shared machine)."""
    start, cpu_start, count = time.perf_counter(), time.process_time(), 0
    for batch in loader:
        count += len(batch["inputs"])
    return (count / (time.perf_counter() - start),
            count / max(time.process_time() - cpu_start, 1e-9))


def measure(loaders: dict, passes: int) -> dict:
    """Samples/s of each loader per pass (interleaved, order alternating) and the ratios."""
    import numpy as np

    names = list(loaders)
    for name in names:  # warm-up: workers started, files and dataset opened
        np.random.seed(0)
        _samples_per_second(loaders[name])
    rates: dict[str, list[float]] = {name: [] for name in names}
    cpu_rates: dict[str, list[float]] = {name: [] for name in names}
    for i in range(passes):
        for name in names if i % 2 == 0 else names[::-1]:
            np.random.seed(i)  # the same flips in the main process (0 workers)
            wall, cpu = _samples_per_second(loaders[name])
            rates[name].append(wall)
            cpu_rates[name].append(cpu)
    ratios = [d / c for d, c in zip(rates["deeplake"], rates["coco"])]
    cpu_ratios = [d / c for d, c in zip(cpu_rates["deeplake"], cpu_rates["coco"])]
    return {"samples_per_s": rates, "ratio_per_pass": ratios,
            "ratio_median": statistics.median(ratios),
            "median_samples_per_s": {n: statistics.median(r) for n, r in rates.items()},
            "cpu_samples_per_s": cpu_rates, "cpu_ratio_median": statistics.median(cpu_ratios)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--size", type=int, nargs=2, default=(256, 320), metavar=("H", "W"))
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--workers", type=int, nargs="+", default=(0, 2))
    parser.add_argument("--root", help="where the two copies go (default: a temporary folder)")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    results = {"images": args.images, "size": list(args.size), "passes": args.passes,
               "runs": {}}
    with tempfile.TemporaryDirectory(prefix="deeplake-bench-") as tmp:
        root = Path(args.root or tmp)
        for workers in args.workers:
            loaders = build_loaders(root, args.images, tuple(args.size), workers)
            run = measure(loaders, args.passes)
            results["runs"][str(workers)] = run
            rates = run["median_samples_per_s"]
            print(f"{workers} workers: Deep Lake {rates['deeplake']:.1f} samples/s, COCO "
                  f"folder {rates['coco']:.1f} samples/s, ratio {run['ratio_median']:.3f} "
                  f"(per pass: {', '.join(f'{r:.2f}' for r in run['ratio_per_pass'])}); "
                  f"by main-process CPU time: ratio {run['cpu_ratio_median']:.3f}")
            del loaders  # persistent workers end here
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
