"""Tests for the synthetic shapes datasets (real files in tmp_path, no mocks)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cplugins import shapes
from cplugins.shapes import (
    CLASSES,
    MANIFEST_NAME,
    SEG_CLASSES,
    make_shapes_classification,
    make_shapes_detection,
    make_shapes_segmentation,
)

REPO = Path(__file__).resolve().parents[1]
LUMA = np.array([0.299, 0.587, 0.114])
# pycocotools' mask.decode trips a numpy 2 DeprecationWarning (not ours)
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
SMALL = {
    "detection": (make_shapes_detection, {"num_train": 4, "num_val": 2}),
    "classification": (make_shapes_classification, {"num_train": 6, "num_val": 3}),
    "segmentation": (make_shapes_segmentation, {"num_train": 4, "num_val": 2}),
}


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def _mtimes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in root.rglob("*")}


@pytest.fixture(scope="module")
def det(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return make_shapes_detection(tmp_path_factory.mktemp("det"), num_train=8, num_val=3)


# ----------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("kind", sorted(SMALL))
def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path, kind: str) -> None:
    make, kwargs = SMALL[kind]
    make(tmp_path / "a", seed=3, **kwargs)
    make(tmp_path / "b", seed=3, **kwargs)
    make(tmp_path / "c", seed=4, **kwargs)
    a, b, c = (_files(tmp_path / n) for n in "abc")
    pngs = [k for k in a if k.endswith(".png")]
    assert len(pngs) >= kwargs["num_train"] + kwargs["num_val"]
    assert a == b
    assert all(a[k] != c.get(k) for k in pngs if k in c)
    assert a[MANIFEST_NAME] != c[MANIFEST_NAME]
    if kind == "detection":
        assert a["annotations/instances_train.json"] != c["annotations/instances_train.json"]


def test_images_do_not_depend_on_counts(tmp_path: Path) -> None:
    make_shapes_detection(tmp_path / "a", num_train=2, num_val=1)
    make_shapes_detection(tmp_path / "b", num_train=3, num_val=2)
    for rel in ("train/000001.png", "train/000002.png", "val/000001.png"):
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()


# ----------------------------------------------------------------------------- detection
def test_detection_return_value(det: dict) -> None:
    root = Path(det["data_root"])
    assert det["classes"] == CLASSES == ("circle", "square", "triangle")
    assert det["metainfo"] == {"classes": CLASSES}
    assert det["train_ann_file"] == "annotations/instances_train.json"
    assert det["val_img_prefix"] == "val/"
    assert det["train"] == {
        "data_root": str(root),
        "ann_file": "annotations/instances_train.json",
        "data_prefix": {"img": "train/"},
        "metainfo": {"classes": CLASSES},
    }
    assert det["num_images"] == {"train": 8, "val": 3}
    assert det["num_instances"]["train"] >= 8
    assert (root / "annotations/instances_val.json").is_file()


@pytest.mark.parametrize("split", ["train", "val"])
def test_detection_coco_annotations(det: dict, split: str) -> None:
    from pycocotools.coco import COCO

    root = Path(det["data_root"])
    coco = COCO(str(root / det[f"{split}_ann_file"]))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(CLASSES)
    assert sorted(coco.getCatIds()) == [1, 2, 3]
    assert len(coco.getImgIds()) == det["num_images"][split]
    assert len(coco.getAnnIds()) == det["num_instances"][split]
    for img_id in coco.getImgIds():
        info = coco.imgs[img_id]
        assert info["file_name"] == f"{img_id:06d}.png"
        image = Image.open(root / det[f"{split}_img_prefix"] / info["file_name"])
        assert image.mode == "RGB" and image.size == (info["width"], info["height"]) == (320, 256)
        pixels = np.asarray(image, dtype=np.float64)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=img_id))
        assert 1 <= len(anns) <= 4
        masks = [coco.annToMask(a).astype(bool) for a in anns]
        background = ~np.any(masks, axis=0)
        for ann, mask in zip(anns, masks):
            x, y, w, h = ann["bbox"]
            assert ann["category_id"] in (1, 2, 3) and ann["iscrowd"] == 0
            assert x >= 0 and y >= 0 and w > 0 and h > 0
            assert x + w <= info["width"] and y + h <= info["height"]
            assert ann["area"] > 0 and ann["area"] == mask.sum()
            # bbox is the tight box of the (polygon-decoded) visible pixels
            ys, xs = np.nonzero(mask)
            assert [xs.min(), ys.min(), np.ptp(xs) + 1, np.ptp(ys) + 1] == ann["bbox"]
            assert len(ann["segmentation"]) == 1 and len(ann["segmentation"][0]) >= 6
            # learnable: the object clearly stands out from the background
            contrast = abs(pixels[mask].mean(0) @ LUMA - pixels[background].mean(0) @ LUMA)
            assert contrast > 50
            assert ann["area"] >= 50  # shapes of >= 16 px keep >= 75 % of their pixels


def test_detection_object_count_range(tmp_path: Path) -> None:
    info = make_shapes_detection(
        tmp_path, num_train=5, num_val=1, image_size=(64, 80), min_objects=2, max_objects=2
    )
    data = json.loads((tmp_path / info["train_ann_file"]).read_text())
    per_image = np.bincount([a["image_id"] for a in data["annotations"]], minlength=6)[1:]
    assert per_image.tolist() == [2] * 5
    assert {(i["height"], i["width"]) for i in data["images"]} == {(64, 80)}


# ----------------------------------------------------------------------------- idempotence
def test_idempotent_then_regenerates_on_new_parameters(tmp_path: Path) -> None:
    first = make_shapes_detection(tmp_path, num_train=3, num_val=2)
    assert first["generated"]
    before = _mtimes(tmp_path)
    again = make_shapes_detection(tmp_path, num_train=3, num_val=2)
    assert not again["generated"]
    assert again["num_instances"] == first["num_instances"]
    assert _mtimes(tmp_path) == before

    changed = make_shapes_detection(tmp_path, num_train=3, num_val=1)
    assert changed["generated"]
    assert sorted(p.name for p in (tmp_path / "val").iterdir()) == ["000001.png"]  # no stale file
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert manifest["complete"] and manifest["params"]["num_val"] == 1


def test_regenerates_damaged_dataset(tmp_path: Path) -> None:
    make_shapes_segmentation(tmp_path, num_train=2, num_val=1)
    reference = _files(tmp_path)
    (tmp_path / "ann_dir/train/000002.png").unlink()
    (tmp_path / "img_dir/val/000001.png").write_bytes(b"garbage")
    assert make_shapes_segmentation(tmp_path, num_train=2, num_val=1)["generated"]
    assert _files(tmp_path) == reference


def test_refuses_to_overwrite_foreign_folders(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "mine.txt").write_text("not generated")
    with pytest.raises(FileExistsError, match="not generated by cplugins"):
        make_shapes_detection(tmp_path, num_train=1, num_val=1)
    assert (tmp_path / "train" / "mine.txt").read_text() == "not generated"


# ----------------------------------------------------------------------------- classification
def test_classification_layout(tmp_path: Path) -> None:
    info = make_shapes_classification(tmp_path, num_train=9, num_val=4, image_size=48, seed=1)
    assert info["classes"] == CLASSES and info["num_images"] == {"train": 9, "val": 4}
    assert info["train"] == {
        "data_root": str(tmp_path),
        "data_prefix": "train",
        "ann_file": "meta/train.txt",
        "metainfo": {"classes": CLASSES},
    }
    for split, count in (("train", 9), ("val", 4)):
        assert sorted(p.name for p in (tmp_path / split).iterdir()) == sorted(CLASSES)
        lines = (tmp_path / "meta" / f"{split}.txt").read_text().splitlines()
        assert len(lines) == count
        for line in lines:
            rel, label = line.split(" ")
            assert rel.split("/")[0] == CLASSES[int(label)]
            image = Image.open(tmp_path / split / rel)
            assert image.mode == "RGB" and image.size == (48, 48)
        on_disk = sorted(p.relative_to(tmp_path / split).as_posix()
                         for p in (tmp_path / split).rglob("*.png"))
        assert on_disk == sorted(line.split(" ")[0] for line in lines)
    lines = (tmp_path / "meta/train.txt").read_text().splitlines()
    labels = [int(line.split()[1]) for line in lines]
    assert np.bincount(labels).tolist() == [3, 3, 3]  # balanced


# ----------------------------------------------------------------------------- segmentation
def test_segmentation_layout_and_labels(tmp_path: Path) -> None:
    info = make_shapes_segmentation(tmp_path, num_train=5, num_val=2, image_size=(96, 112))
    assert info["classes"] == SEG_CLASSES == ("background",) + CLASSES
    assert len(info["palette"]) == 4
    assert info["val"]["data_prefix"] == {"img_path": "img_dir/val", "seg_map_path": "ann_dir/val"}
    assert info["val"]["reduce_zero_label"] is False and info["val"]["img_suffix"] == ".png"
    seen: set[int] = set()
    for split, count in (("train", 5), ("val", 2)):
        names = sorted(p.name for p in (tmp_path / "img_dir" / split).iterdir())
        assert names == sorted(p.name for p in (tmp_path / "ann_dir" / split).iterdir())
        assert len(names) == count
        for name in names:
            image = Image.open(tmp_path / "img_dir" / split / name)
            label = Image.open(tmp_path / "ann_dir" / split / name)
            assert image.mode == "RGB" and label.mode == "L"
            assert image.size == label.size == (112, 96)
            values = np.unique(np.asarray(label))
            assert values.min() == 0 and values.max() <= 3 and len(values) >= 2
            seen.update(values.tolist())
    assert seen == {0, 1, 2, 3}


# ----------------------------------------------------------------------------- arguments
@pytest.mark.parametrize(
    ("make", "kwargs", "match"),
    [
        (make_shapes_detection, {"num_train": 0}, r"num_train must be an integer >= 1, got 0"),
        (make_shapes_detection, {"num_val": -2}, r"num_val must be an integer >= 1"),
        (make_shapes_detection, {"num_train": 2.5}, r"num_train must be an integer"),
        (make_shapes_detection, {"seed": -1}, r"seed must be an integer >= 0"),
        (make_shapes_detection, {"image_size": (24, 320)}, r"too small.*>= 32 px"),
        (make_shapes_detection, {"image_size": (1, 2, 3)}, r"image_size must be an int or a"),
        (make_shapes_detection, {"min_objects": 3, "max_objects": 2},
         r"min_objects must be <= max_objects"),
        (make_shapes_detection, {"max_objects": 0}, r"max_objects must be an integer >= 1"),
        (make_shapes_classification, {"num_val": 0}, r"num_val must be an integer >= 1"),
        (make_shapes_classification, {"image_size": 8}, r"too small.*>= 16 px"),
        (make_shapes_segmentation, {"image_size": (128, 20)}, r"too small.*>= 32 px"),
        (make_shapes_segmentation, {"num_train": True}, r"num_train must be an integer"),
    ],
)
def test_bad_arguments(tmp_path: Path, make, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make(tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())  # nothing written


# ----------------------------------------------------------------------------- CLI
def test_cli_main(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["segmentation", "--out", str(tmp_path), "--num-train", "2", "--num-val", "1",
            "--size", "48", "64", "--seed", "5"]
    assert shapes.main(argv) == 0
    assert f"wrote segmentation dataset to {tmp_path}" in capsys.readouterr().out
    assert Image.open(tmp_path / "img_dir/train/000002.png").size == (64, 48)
    assert shapes.main(argv) == 0
    assert "up to date" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        shapes.main(["detection", "--out", str(tmp_path / "x"), "--num-train", "0"])
    assert "num_train must be an integer >= 1" in capsys.readouterr().err


def test_python_dash_m(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-m", "cplugins.shapes",
         "classification", "--out", str(tmp_path), "--num-train", "3", "--num-val", "3"],
        capture_output=True, text=True, env=env, check=True,
    )
    assert str(tmp_path) in out.stdout
    assert len(list(tmp_path.rglob("*.png"))) == 6


# ----------------------------------------------------------------------------- mmdet
def test_mmdet_coco_dataset_loads(det: dict) -> None:
    import cplugins  # noqa: F401  (arms the torchvision import fix before mmdet)

    pytest.importorskip("mmcv", reason="mmdet needs mmcv")
    from mmdet.datasets import CocoDataset

    for split in ("train", "val"):
        dataset = CocoDataset(**det[split], pipeline=[], test_mode=False)
        assert dataset.metainfo["classes"] == CLASSES
        assert len(dataset) == det["num_images"][split]
        infos = [dataset.get_data_info(i) for i in range(len(dataset))]
        instances = [inst for info in infos for inst in info["instances"]]
        assert len(instances) == det["num_instances"][split]
        assert {inst["bbox_label"] for inst in instances} <= {0, 1, 2}
        for info in infos:
            assert os.path.isfile(info["img_path"])
            for inst in info["instances"]:
                x1, y1, x2, y2 = inst["bbox"]
                assert 0 <= x1 < x2 <= info["width"] and 0 <= y1 < y2 <= info["height"]
                assert inst["ignore_flag"] == 0 and len(inst["mask"][0]) >= 6

    # the real loading transforms decode the polygons into exactly `area` pixels
    from mmcv.transforms import LoadImageFromFile
    from mmdet.datasets.transforms import LoadAnnotations

    pipeline = [LoadImageFromFile(), LoadAnnotations(with_bbox=True, with_mask=True)]
    dataset = CocoDataset(**det["val"], pipeline=pipeline)
    coco = json.loads((Path(det["data_root"]) / det["val_ann_file"]).read_text())
    sample = dataset[0]
    areas = [a["area"] for a in coco["annotations"] if a["image_id"] == sample["img_id"]]
    assert sample["img"].shape == (256, 320, 3)
    assert sample["gt_masks"].masks.sum(axis=(1, 2)).tolist() == areas
    assert len(sample["gt_bboxes"]) == len(areas)
