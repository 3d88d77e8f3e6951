"""``cplugins data check`` and the check at the start of tools/train.py, on the synthetic set
with faults injected: every fault is reported with its count and an example."""
from __future__ import annotations

import io
import json
import shutil

import pytest
from helpers import run_python
from training_setup import error_lines, train, write_tiny_config

from cplugins.data.check import DataCheckError, check_training_data
from cplugins.data.cityscapes import make_cityscapes
from cplugins.shapes import make_shapes_detection


@pytest.fixture(scope="module")
def clean_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "shapes"
    make_shapes_detection(root, num_train=8, num_val=2, image_size=(64, 80), seed=1)
    return root


def _cli(*args: str):
    return run_python("", args=["-m", "cplugins.cli", "data", "check", *args])


def test_clean_set_passes(clean_set):
    result = _cli(str(clean_set))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "instances_train.json" in result.stdout and "no errors" in result.stdout
    assert "8 images, " in result.stdout


def _break(root):
    """Every fault of the issue, once or twice, in the training split."""
    ann_file = root / "annotations" / "instances_train.json"
    content = json.loads(ann_file.read_text())
    images = content["images"]
    (root / "train" / images[0]["file_name"]).unlink()                       # missing
    truncated = root / "train" / images[1]["file_name"]
    truncated.write_bytes(truncated.read_bytes()[:200])                      # truncated
    anns = [a for a in content["annotations"] if a["category_id"] != 3]     # no triangles
    anns[0]["bbox"][2] = -5                                                  # negative width
    anns[1]["category_id"] = 99                                              # unknown category
    anns[2]["bbox"] = [500, 500, 10, 10]                                     # outside the image
    content["annotations"] = anns
    ann_file.write_text(json.dumps(content))
    val_file = root / "annotations" / "instances_val.json"
    val = json.loads(val_file.read_text())
    val["annotations"] = []                                                  # empty set
    val_file.write_text(json.dumps(val))
    return images


def test_faults_are_each_reported(clean_set, tmp_path):
    root = tmp_path / "shapes"
    shutil.copytree(clean_set, root)
    images = _break(root)
    result = _cli(str(root))
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert f"error: 1 missing image files: {images[0]['file_name']}" in out
    assert f"error: 1 unreadable or truncated images: {images[1]['file_name']}" in out
    assert "error: 1 degenerate boxes (width or height <= 0)" in out
    assert "error: 1 annotations of unknown category ids" in out and "category_id 99" in out
    assert "error: 1 boxes entirely outside their image" in out
    assert "warning: 1 categories with no instances: triangle (id 3)" in out
    assert "error: 1 empty annotation sets" in out

    # --sample decodes fewer images but still checks every annotation
    sampled = _cli(str(root), "--sample", "1")
    assert sampled.returncode == 1 and "1 images opened" in sampled.stdout
    assert "degenerate boxes" in sampled.stdout

    bad = _cli(str(root), "--sample", "0")
    assert bad.returncode == 2 and "must be a whole number >= 1" in bad.stderr


@pytest.mark.slow
def test_train_stops_on_bad_data_before_building(clean_set, tmp_path):
    config = write_tiny_config(tmp_path, extra="synthetic_data = None\n")  # no regeneration
    root = tmp_path / "shapes"
    shutil.copytree(clean_set, root)   # the config's data_root
    _break(root)
    result = train(config, tmp_path / "work")
    assert result.returncode != 0
    errors = error_lines(result)
    assert errors == ["error: the data check found errors (--no-data-check skips it):"], \
        result.stderr[-3000:]
    assert "missing image files" in result.stderr and "Traceback" not in result.stderr
    assert not list((tmp_path / "work").glob("*/*.log"))


# ----------------------------------------------------------------------------- Cityscapes
@pytest.fixture(scope="module")
def cityscapes_set(tmp_path_factory):
    return make_cityscapes(tmp_path_factory.mktemp("cs") / "cityscapes", num_train=2,
                           num_val=2, seed=0)


def _cityscapes_config(info: dict, cityscapes_metric: bool = True, train: dict | None = None):
    """mmdet's configs/_base_/datasets/cityscapes_instance.py on the synthetic set."""
    from mmengine.config import Config

    evaluators = [dict(type="CocoMetric", ann_file=f"{info['data_root']}/{info['val_ann_file']}",
                       metric=["bbox", "segm"])]
    if cityscapes_metric:
        evaluators.append(dict(type="CityScapesMetric", seg_prefix=info["val_seg_prefix"],
                               outfile_prefix="./work_dirs/cityscapes_metric/instance"))
    train = train or dict(type="CityscapesDataset", **info["train"], pipeline=[],
                          filter_cfg=dict(filter_empty_gt=True, min_size=32))
    return Config(dict(
        train_dataloader=dict(dataset=dict(type="RepeatDataset", times=8, dataset=train)),
        val_dataloader=dict(dataset=dict(type="CityscapesDataset", **info["val"],
                                         test_mode=True, pipeline=[])),
        val_evaluator=evaluators))


def test_cityscapes_sets_are_checked_with_the_files_the_metric_reads(cityscapes_set, tmp_path):
    stream = io.StringIO()
    reports = check_training_data(_cityscapes_config(cityscapes_set), stream=stream)
    assert [r.source.split(" ")[0].rsplit("/", 1)[1] for r in reports] == [
        "instancesonly_filtered_gtFine_train.json", "instancesonly_filtered_gtFine_val.json"]
    assert not any(r.errors for r in reports), stream.getvalue()
    assert "2 images opened" in stream.getvalue() and "not checked" not in stream.getvalue()

    root = tmp_path / "cityscapes"
    shutil.copytree(cityscapes_set["data_root"], root)
    info = make_cityscapes(root, num_train=2, num_val=2, seed=0)  # same set: not rewritten
    assert not info["generated"]
    gt = "gtFine/val/frankfurt/frankfurt_000000_000019_gtFine_instanceIds.png"
    (root / gt).unlink()
    with pytest.raises(DataCheckError) as caught:
        check_training_data(_cityscapes_config(info))
    assert ("error: 1 missing gtFine instanceIds files (CityScapesMetric reads them when it "
            f"evaluates): {gt}") in str(caught.value)
    # evaluated by CocoMetric alone, the set needs no gtFine files
    check_training_data(_cityscapes_config(info, cityscapes_metric=False), stream=io.StringIO())


def test_dataset_types_not_checked_are_named(cityscapes_set):
    voc = dict(type="VOCDataset", data_root="data/VOCdevkit/",
               ann_file="VOC2007/ImageSets/Main/trainval.txt",
               data_prefix=dict(sub_data_root="VOC2007/"), pipeline=[])
    stream = io.StringIO()
    reports = check_training_data(_cityscapes_config(cityscapes_set, train=voc), stream=stream)
    assert len(reports) == 1  # the Cityscapes validation set
    not_checked = [line for line in stream.getvalue().splitlines() if "not checked" in line]
    assert not_checked == ["data check: not checked: train_dataloader: VOCDataset (an "
                           "annotation format this check does not read: "
                           "VOC2007/ImageSets/Main/trainval.txt)"]


def test_cli_checks_a_cityscapes_json_or_folder(cityscapes_set):
    result = _cli(f"{cityscapes_set['data_root']}/{cityscapes_set['val_ann_file']}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "leftImg8bit/val" in result.stdout and "2 images opened" in result.stdout
    assert "no errors" in result.stdout
    result = _cli(cityscapes_set["data_root"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split(" ")[0].rsplit("/", 1)[1] for line in result.stdout.splitlines()
            if not line.startswith(" ")] == ["instancesonly_filtered_gtFine_train.json",
                                             "instancesonly_filtered_gtFine_val.json"]
