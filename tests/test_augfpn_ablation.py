"""tools/augfpn_ablation.py: its statistics against independent computations, and its table
(the real command, on made-up run results; nothing is trained here)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO, run_python
from scipy import stats

sys.path.insert(0, str(REPO / "tools"))
import augfpn_ablation as ablation  # noqa: E402

BASELINE = {0: 0.101, 1: 0.124, 2: 0.097, 3: 0.133, 4: 0.110}
OTHER = {0: 0.118, 1: 0.129, 2: 0.121, 3: 0.131, 4: 0.127}


def test_paired_difference_is_scipys_paired_t_interval():
    got = ablation.paired_difference(BASELINE, OTHER)
    seeds = sorted(BASELINE)
    a, b = [OTHER[s] for s in seeds], [BASELINE[s] for s in seeds]
    expected = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert got["n"] == 5 and got["seeds"] == seeds
    assert got["mean"] == pytest.approx(np.mean(np.subtract(a, b)), abs=1e-12)
    assert (got["low"], got["high"]) == pytest.approx((expected.low, expected.high), abs=1e-12)


def test_paired_difference_pairs_seeds_and_needs_two():
    partial = ablation.paired_difference({0: 0.1, 1: 0.2, 2: 0.3}, {1: 0.25, 2: 0.25, 7: 0.9})
    d = [0.25 - 0.2, 0.25 - 0.3]
    half = stats.t.ppf(0.975, 1) * np.std(d, ddof=1) / np.sqrt(2)
    assert partial["seeds"] == [1, 2]
    assert (partial["low"], partial["high"]) == pytest.approx((np.mean(d) - half,
                                                               np.mean(d) + half))
    one = ablation.paired_difference({0: 0.1}, {0: 0.3})
    assert one["mean"] == pytest.approx(0.2) and one["low"] is None and one["high"] is None


def test_fallback_t_table_is_students_t():
    expected = [stats.t.ppf(0.975, df) for df in range(1, 31)]
    assert ablation.T_975 == pytest.approx(expected, abs=6e-4)


def _fake_work_root(root: Path, seeds: list[int]) -> dict:
    """metrics.json per variant and seed (AP large missing: -1) and a timing.json."""
    rng = np.random.default_rng(0)
    values = {}
    for i, (_, config) in enumerate(ablation.VARIANTS):
        for seed in seeds:
            name = Path(config).stem + ("" if seed == 0 else f"_seed{seed}")
            m = {"coco/bbox_mAP": 0.1 + 0.01 * i + rng.normal(0, 0.01),
                 "coco/bbox_mAP_50": 0.2 + rng.normal(0, 0.01),
                 "coco/bbox_mAP_s": 0.05 + rng.normal(0, 0.01),
                 "coco/bbox_mAP_m": 0.15 + rng.normal(0, 0.01),
                 "coco/bbox_mAP_l": -1.0}
            values[(i, seed)] = m
            (root / name).mkdir(parents=True)
            (root / name / "metrics.json").write_text(json.dumps(m))
            (root / name / "train_wall_s.json").write_text(json.dumps({"wall_s": 120.0}))
    (root / "timing.json").write_text(json.dumps({
        "repeats": 3, "images": 4, "image_size": "160x160", "threads": 1,
        "train_step_s": [1.0, 1.0, 1.5, 1.2], "inference_s": [0.1, 0.1, 0.1, 0.12]}))
    return values


def test_table_step_writes_means_stds_intervals_and_the_paper_numbers(tmp_path):
    seeds = [0, 1, 2]
    values = _fake_work_root(tmp_path / "runs", seeds)
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{ablation.BEGIN}\nold table\n{ablation.END}\noutro\n")
    result = run_python("", args=["tools/augfpn_ablation.py", "--steps", "table", "--work-root",
                                  str(tmp_path / "runs"), "--seeds", "0", "1", "2",
                                  "--update-readme", str(readme)])
    assert result.returncode == 0, result.stderr
    text = readme.read_text()
    assert text.startswith(f"intro\n{ablation.BEGIN}\n")
    assert text.endswith(f"{ablation.END}\noutro\n")
    assert "old table" not in text
    full = np.array([values[(3, s)]["coco/bbox_mAP"] for s in seeds])
    fpn = np.array([values[(0, s)]["coco/bbox_mAP"] for s in seeds])
    rows = [line for line in text.splitlines() if line.startswith("| +RFA+CS+SRS")]
    assert len(rows) == 2  # summary table, then differences to FPN
    row = rows[0].split(" | ")
    assert row[1] == f"{full.mean():.3f} ± {full.std(ddof=1):.3f}"
    assert row[4] == "n/a"  # no large object: CocoMetric's -1 is not averaged
    assert row[6] == "1.20x (1.20 s)" and row[7] == "1.20x (0.120 s)"
    ci = stats.ttest_rel(full, fpn).confidence_interval(0.95)
    assert rows[1].split(" | ")[1] == (f"{(full - fpn).mean():+.3f} [{ci.low:+.3f}, "
                                            f"{ci.high:+.3f}]")
    assert "FPN 36.5 AP, AugFPN 38.8 AP (+2.3)" in text
    assert "over training seeds [0, 1, 2]" in text
    assert "Command: `python tools/augfpn_ablation.py --steps table" in text
    results = json.loads((tmp_path / "runs" / "results.json").read_text())
    assert results["rows"][3]["per_seed"]["2"]["AP_l"] is None


def test_update_readme_that_does_not_exist_is_one_error_line(tmp_path):
    result = run_python("", args=["tools/augfpn_ablation.py", "--steps", "table", "--work-root",
                                  str(tmp_path), "--update-readme", str(tmp_path / "nope.md")])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith(
        f"--update-readme: {tmp_path / 'nope.md'} is not a file")


def test_variants_differ_only_in_the_augfpn_components():
    """Same data, schedule, backbone and heads for every variant; only the neck, the detector
    (CS) and the RoI extractor (SRS) change, in the table's order."""
    from mmengine.config import Config

    cfgs = [Config.fromfile(str(REPO / config)) for _, config in ablation.VARIANTS]
    parts = [(c.model.type, c.model.neck.type, c.model.roi_head.type,
              c.model.roi_head.bbox_roi_extractor.type) for c in cfgs]
    assert parts == [
        ("FasterRCNN", "FPN", "StandardRoIHead", "SingleRoIExtractor"),
        ("FasterRCNN", "AugFPN", "StandardRoIHead", "SingleRoIExtractor"),
        ("CSTwoStageDetector", "AugFPN", "CSRoIHead", "SingleRoIExtractor"),
        ("CSTwoStageDetector", "AugFPN", "CSRoIHead", "SoftRoIExtractor"),
    ]
    for cfg in cfgs[1:]:
        for key in ("synthetic_data", "train_dataloader", "val_evaluator", "train_cfg",
                    "optim_wrapper", "param_scheduler", "randomness"):
            assert cfg[key] == cfgs[0][key], key
        assert cfg.model.backbone == cfgs[0].model.backbone
        assert cfg.model.rpn_head == cfgs[0].model.rpn_head
        assert cfg.model.roi_head.bbox_head == cfgs[0].model.roi_head.bbox_head
    data = cfgs[0].synthetic_data
    assert (data.size_sampling, tuple(data.shape_size), data.max_objects) == ("log", (4, 100), 12)


def test_multiscale_option_spans_tiny_to_large_objects_in_sparse_and_crowded_scenes(tmp_path):
    from cplugins.shapes import make_shapes_detection

    info = make_shapes_detection(tmp_path, num_train=1, num_val=24, image_size=(128, 128),
                                 min_objects=1, max_objects=12, shape_size=(4, 100),
                                 size_sampling="log")
    ann = json.loads((Path(info["data_root"]) / info["val_ann_file"]).read_text())
    longest = np.array([max(a["bbox"][2:]) for a in ann["annotations"]])
    per_image = np.bincount([a["image_id"] for a in ann["annotations"]], minlength=25)[1:]
    assert longest.min() <= 8 and longest.max() >= 64  # a few pixels to most of the image
    assert per_image.min() <= 3 and per_image.max() >= 9  # sparse and crowded scenes
    # log-uniform: log(20/4) / log(100/4) = half of the shapes are under 20 px (uniform
    # sampling would give 16 / 96, a sixth)
    assert 0.3 < (longest < 20).mean() < 0.7
