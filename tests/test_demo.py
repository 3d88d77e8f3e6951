"""The demo (`make demo` = tools/demo.py): its config, its easy synthetic data and its pictures.

The full demo is not run here; a 4-iteration run of the demo config on 64 px images goes
through the real command and its pictures are checked.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO, run_python
from PIL import Image

from cplugins.shapes import make_shapes_detection

DEMO_CONFIG = REPO / "configs" / "augfpn" / "fcos_r18-w32_augfpn_600i_shapes-easy128.py"


def _boxes(root: Path, split: str) -> tuple[dict, list]:
    ann = json.loads((root / "annotations" / f"instances_{split}.json").read_text())
    return ann, ann["annotations"]


def _background_std(root: Path, ann: dict) -> float:
    """Mean per-image std of the pixels outside every box (grey levels)."""
    stds = []
    for image in ann["images"]:
        pixels = np.asarray(Image.open(root / "val" / image["file_name"]), np.float32)
        outside = np.ones(pixels.shape[:2], bool)
        for a in ann["annotations"]:
            if a["image_id"] == image["id"]:
                x, y, w, h = (int(round(v)) for v in a["bbox"])
                outside[max(0, y - 1):y + h + 1, max(0, x - 1):x + w + 1] = False
        stds.append(float(pixels[outside].std(0).mean()))
    return float(np.mean(stds))


def test_demo_config_is_augfpn_on_its_easy_data():
    from mmengine.config import Config

    cfg = Config.fromfile(str(DEMO_CONFIG))
    assert (cfg.model.type, cfg.model.neck.type) == ("FCOS", "AugFPN")
    data = cfg.synthetic_data
    assert (data.background, tuple(data.shape_size), tuple(data.image_size)) == \
        ("plain", (24, 64), (128, 128))
    assert data.data_root in cfg.val_evaluator.ann_file
    assert cfg.val_dataloader.dataset.data_root == data.data_root
    # the mAP it reports is measured on the validation split, never on training images
    assert cfg.val_dataloader.dataset.ann_file.endswith("instances_val.json")
    assert cfg.val_dataloader.dataset.data_prefix.img == "val/"


def test_plain_background_option_gives_flat_backgrounds_and_the_asked_sizes(tmp_path):
    common = dict(num_train=1, num_val=6, image_size=(128, 128), min_objects=1, max_objects=3,
                  shape_size=(24, 64))
    plain = make_shapes_detection(tmp_path / "plain", background="plain", **common)
    textured = make_shapes_detection(tmp_path / "textured", **common)
    ann, boxes = _boxes(Path(plain["data_root"]), "val")
    # flat colour + the generator's pixel noise (sigma 4); textured backgrounds vary far more
    assert _background_std(Path(plain["data_root"]), ann) < 6
    t_ann, _ = _boxes(Path(textured["data_root"]), "val")
    assert _background_std(Path(textured["data_root"]), t_ann) > 10
    per_image = np.bincount([b["image_id"] for b in boxes], minlength=7)[1:]
    assert per_image.min() >= 1 and per_image.max() <= 3
    # extents: shapes of 24..64 px (a rotated square is up to 1.23x its side; occlusion keeps
    # >= 75 % of the pixels, so a visible box keeps most of its extent)
    longest = [max(b["bbox"][2:]) for b in boxes]
    assert min(longest) >= 12 and max(longest) <= 64 * 1.25


def test_new_options_change_the_manifest_and_defaults_keep_it(tmp_path):
    first = make_shapes_detection(tmp_path, num_train=2, num_val=1)
    manifest = json.loads((tmp_path / "cplugins_dataset.json").read_text())
    assert not {"shape_size", "size_sampling", "background"} & set(manifest["params"])
    assert first["generated"]
    assert not make_shapes_detection(tmp_path, num_train=2, num_val=1)["generated"]
    again = make_shapes_detection(tmp_path, num_train=2, num_val=1, background="plain")
    assert again["generated"]
    params = json.loads((tmp_path / "cplugins_dataset.json").read_text())["params"]
    assert params["background"] == "plain"


@pytest.mark.parametrize("kwargs, message", [
    (dict(shape_size=(24, 200)), r"shape_size must be a \(min, max\) pair .*<= 128"),
    (dict(shape_size=(1, 20)), r"2 <= min"),
    (dict(shape_size=(30, 20)), r"shape_size must be"),
    (dict(size_sampling="exp"), r"size_sampling must be 'uniform' or 'log', got 'exp'"),
    (dict(background="noise"), r"background must be 'textured' or 'plain', got 'noise'"),
])
def test_bad_new_options_say_what_is_allowed(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_shapes_detection(tmp_path, num_train=1, num_val=1, image_size=(160, 160), **kwargs)


def test_draw_only_without_a_run_is_one_error_line(tmp_path):
    result = run_python("", args=["tools/demo.py", "--draw-only", "--work-dir", str(tmp_path)])
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"error: no */vis_data/scalars.json in {tmp_path}: nothing was trained there (run "
        "without --draw-only)"]


@pytest.mark.slow
def test_demo_tool_trains_then_writes_side_by_side_pictures_and_the_curve(tmp_path):
    data_root = tmp_path / "data"
    config = tmp_path / "tiny_demo.py"
    config.write_text(f"""
_base_ = [{str(DEMO_CONFIG)!r}]
data_root = {str(data_root) + '/'!r}
synthetic_data = dict(data_root=data_root, num_train=4, num_val=2, image_size=(64, 64),
                      shape_size=(16, 40))
train_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
train_cfg = dict(max_iters=4, val_interval=2)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end=4)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=4))
""")
    work_dir = tmp_path / "work"
    result = run_python("", args=["tools/demo.py", str(config), "--work-dir", str(work_dir),
                                  "--images", "2", "--no-progress"], timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "bbox mAP (COCO mAP@[.5:.95], held-out validation images) at iteration 4:" in out
    assert f"training curve: {work_dir}/demo/training_curve.png" in out

    with Image.open(work_dir / "demo" / "training_curve.png") as curve:
        assert curve.size == (800, 400)
    pictures = sorted((work_dir / "demo").glob("val_*.png"))
    assert [p.name for p in pictures] == ["val_000001.png", "val_000002.png"]
    for picture in pictures:
        drawn = np.asarray(Image.open(picture).convert("RGB"))
        original = np.asarray(Image.open(data_root / "val" / picture.name[4:]).convert("RGB"))
        enlarged = original.repeat(3, axis=0).repeat(3, axis=1)  # --scale 3 (the default)
        # ground truth | predictions, each the image drawn 3x larger
        assert drawn.shape == (192, 384, 3)
        # the left half is the image plus the ground-truth boxes: mostly the image, not all
        changed = (drawn[:, :192] != enlarged).any(axis=-1).mean()
        assert 0.01 < changed < 0.5

    # the curve was drawn from this run's logged scalars: 4 losses, validations at 2 and 4
    import sys

    sys.path.insert(0, str(REPO / "tools"))
    from demo import latest_scalars, read_curve

    curve = read_curve(latest_scalars(str(work_dir)))
    assert [step for step, _ in curve.loss] == [1, 2, 3, 4]
    assert [step for step, _ in curve.mAP] == [2, 4]


def test_boxes_stand_out_on_a_background_of_their_class_colour():
    """The demo drew boxes in the class palette: crimson boxes on a red background were
    barely visible. Drawn with the demo's colour, a box edge differs from the background by
    far more than with the class colour (mmdet's own visualizer draws both)."""
    import sys

    import torch
    from mmdet.structures import DetDataSample
    from mmdet.visualization import DetLocalVisualizer
    from mmengine.structures import InstanceData

    sys.path.insert(0, str(REPO / "tools"))
    from demo import contrasting_colour

    red = np.zeros((96, 96, 3), np.uint8)
    red[...] = (200, 30, 50)  # a red background of the shapes sets (luma in [30, 95])
    sample = DetDataSample()
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[20.0, 20.0, 76.0, 76.0]]),
                                       labels=torch.tensor([0]))
    contrast = {}
    for name, colour in (("palette", None), ("demo", contrasting_colour(red))):
        visualizer = DetLocalVisualizer(name=f"contrast-{name}", bbox_color=colour)
        visualizer.dataset_meta = dict(classes=("circle",), palette=[(220, 20, 60)])
        visualizer.add_datasample("x", red, sample, draw_pred=False, show=False)
        drawn = visualizer.get_image().astype(np.int64)
        edge = drawn[40:56, 19:22]  # the left edge, away from the label text
        contrast[name] = float(np.abs(edge - red[40:56, 19:22]).sum(-1).mean())
    assert contrast["palette"] < 60 < 300 < contrast["demo"], contrast
