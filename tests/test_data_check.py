"""``cplugins data check`` and the check at the start of tools/train.py, on the synthetic set
with faults injected: every fault is reported with its count and an example."""
from __future__ import annotations

import json
import shutil

import pytest
from helpers import run_python
from training_setup import error_lines, train, write_tiny_config

from cplugins.data.shapes import make_shapes_detection


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
