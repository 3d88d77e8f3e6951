"""The ``DeepLake-loading`` benchmark case: declared without deeplake, compares the same data,
and runs through ``cplugins bench`` (4 tiny images, 1 pass, 0 workers)."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from cplugins_deeplake.plugin import loading_case

REPO = Path(__file__).resolve().parents[3]


def test_case_is_declared_without_importing_deeplake_or_torch():
    code = ("import sys\n"
            "from cplugins.bench.collect import collect_cases\n"
            "cases, _, errors = collect_cases([])\n"
            "case = next(c for c in cases if c.name == 'DeepLake-loading')\n"
            "print('CASE', case.kind, case.label, case.workers, errors)\n"
            "print('HEAVY', sorted(m for m in ('deeplake', 'torch', 'mmdet') "
            "if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "CASE dataloader DeepLakeDetDataset (0, 2) []" in result.stdout
    assert "HEAVY []" in result.stdout


def test_both_loaders_yield_the_same_samples(tmp_path):
    """Deep Lake and COCO folder loaders of the case: the same images, boxes and labels
    (what makes their samples/s comparable); the same flips from the same seed."""
    from cplugins.bench.loading import build_loader, fill_placeholders, prepare_data

    case = loading_case(images=4, size=(64, 80))
    values = prepare_data(case, tmp_path)
    batches = {}
    for role, cfg in (("deeplake", case.module), ("coco", case.baseline)):
        loader = build_loader(fill_placeholders(cfg, values, case.name), case.scope, 0, None, 0)
        np.random.seed(1)
        batches[role] = [sample for batch in loader
                         for sample in zip(batch["inputs"], batch["data_samples"])]
    assert len(batches["deeplake"]) == len(batches["coco"]) == 4
    flips = set()
    for (img_dl, ds_dl), (img_coco, ds_coco) in zip(batches["deeplake"], batches["coco"]):
        assert torch.equal(img_dl, img_coco)
        assert ds_dl.flip == ds_coco.flip
        flips.add(ds_dl.flip)
        assert len(ds_dl.gt_instances) > 0
        assert torch.equal(ds_dl.gt_instances.bboxes.tensor, ds_coco.gt_instances.bboxes.tensor)
        assert torch.equal(ds_dl.gt_instances.labels, ds_coco.gt_instances.labels)
    assert flips == {True, False}  # RandomFlip 0.5 drew both
    assert values["classes"] == ("circle", "square", "triangle")


def test_case_runs_through_cplugins_bench(tmp_path):
    snippet = tmp_path / "deeplake_loading.py"
    case = loading_case(images=4, size=(64, 80))  # the declared case, 4 small images
    fields = {f.name: getattr(case, f.name) for f in dataclasses.fields(case)
              if f.name != "provider"}
    snippet.write_text(f"bench_case = {fields!r}\n")
    result = subprocess.run(
        [sys.executable, "-m", "cplugins.cli", "bench", str(snippet), "--device", "cpu",
         "--threads", "1", "--rounds", "1", "--warmup", "0", "--workers", "0", "--no-chart",
         "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=300,
        cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    assert ("DeepLake-loading bs=2 load 0w: DeepLakeDetDataset " in result.stderr
            and " samples/s vs CocoDataset (COCO folder) " in result.stderr
            and " samples/s ratio " in result.stderr), result.stderr[-3000:]
    record = json.loads((tmp_path / "out" / "bench.json").read_text())
    entry = record["results"][0]["modes"]["load 0w"]
    assert entry["module"]["samples_per_pass"] == entry["baseline"]["samples_per_pass"] == 4
    assert "warning" not in result.stderr
