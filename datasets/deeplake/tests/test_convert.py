"""`cplugins data convert`: COCO -> Deep Lake -> COCO gives back the same files."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SPLITS = ("train", "val")


def _cli(*commands: list[str]) -> list[tuple[int, str]]:
    """Run ``cplugins`` commands (its ``main``, as the console script does) in one fresh
    interpreter; ``(exit status, stderr)`` of each."""
    code = ("import contextlib, io, json, sys\n"
            "from cplugins.cli import main\n"
            "out = []\n"
            "for argv in json.loads(sys.argv[1]):\n"
            "    err = io.StringIO()\n"
            "    with contextlib.redirect_stderr(err):\n"
            "        try:\n"
            "            rc = main(argv)\n"
            "        except SystemExit as exc:\n"
            "            rc = exc.code\n"
            "    out.append((rc, err.getvalue()))\n"
            "print('RESULTS' + json.dumps(out))\n")
    result = subprocess.run([sys.executable, "-c", code, json.dumps(commands)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "RESULTS" in result.stdout, result.stderr[-3000:]
    return [tuple(r) for r in json.loads(result.stdout.split("RESULTS", 1)[1])]


def test_round_trip_is_identical(shapes_coco, shapes_deeplake, tmp_path):
    import deeplake

    coco = Path(shapes_coco["data_root"])
    (tmp_path / "empty").mkdir()
    versions = {split: deeplake.open_read_only(str(shapes_deeplake / split)).version
                for split in SPLITS}
    back, empty, again, onto_coco, onto_deeplake = _cli(
        ["data", "convert", str(shapes_deeplake), str(tmp_path / "back")],
        ["data", "convert", str(tmp_path / "empty"), str(tmp_path / "out")],
        ["data", "convert", str(shapes_deeplake), str(tmp_path / "out"), "--to", "deeplake"],
        ["data", "convert", str(shapes_deeplake), str(tmp_path / "back")],
        ["data", "convert", str(coco), str(shapes_deeplake)])
    assert back[0] == 0, back[1][-2000:]
    # a DST that holds the output already: refused, nothing written over
    for refused in (onto_coco, onto_deeplake):
        assert refused[0] == 2 and "exists already; choose an empty DST" in refused[1], refused
    assert {split: deeplake.open_read_only(str(shapes_deeplake / split)).version
            for split in SPLITS} == versions
    # bad sources: one line each, exit 2, nothing written
    assert empty[0] == 2 and "is neither a COCO folder" in empty[1], empty
    assert again[0] == 2 and "is a Deep Lake dataset already" in again[1], again
    assert not (tmp_path / "out").exists()
    for split in SPLITS:
        original = json.loads((coco / f"annotations/instances_{split}.json").read_text())
        back = json.loads((tmp_path / f"back/annotations/instances_{split}.json").read_text())
        assert back == original  # file names, ids, boxes, labels, categories, extra fields
        assert original["annotations"] and len(original["images"]) == (4 if split == "train"
                                                                        else 2)
        for image in original["images"]:
            name = image["file_name"]
            assert (tmp_path / "back" / split / name).read_bytes() == \
                (coco / split / name).read_bytes(), name
        ds = deeplake.open_read_only(str(shapes_deeplake / split))
        message = ds.history[ds.version].message
        assert str(coco / "annotations" / f"instances_{split}.json") in message, message
        # the stored bytes are the files' bytes: nothing was re-encoded
        assert ds["images"].get_bytes(0) == (coco / split / original["images"][0][
            "file_name"]).read_bytes()


def test_convert_without_deeplake_says_what_to_install(shapes_coco, tmp_path, monkeypatch,
                                                       capsys):
    from cplugins.cli import main

    monkeypatch.setitem(sys.modules, "deeplake", None)  # what an absent package raises
    assert main(["data", "convert", shapes_coco["data_root"], str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "need the deeplake package" in err and "pip install cplugins-deeplake" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def _jpeg(seed: int) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    pixels = np.random.default_rng(seed).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buf, "jpeg", quality=77)
    return buf.getvalue()


def test_round_trip_keeps_what_coco_files_hold(tmp_path):
    """JPEG, nested file names, an image without boxes, crowd boxes, RLE and polygons,
    categories out of id order, float boxes, annotations not grouped by image; the dataset
    keeps the instances (masks included) CocoDataset keeps."""
    import cplugins_deeplake  # noqa: F401
    from cplugins_deeplake.convert import convert
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope

    src = tmp_path / "src"
    files = {"a.jpg": _jpeg(0), "sub/b.jpg": _jpeg(1), "c.jpg": _jpeg(2)}
    for name, data in files.items():
        (src / "images/val2017" / name).parent.mkdir(parents=True, exist_ok=True)
        (src / "images/val2017" / name).write_bytes(data)
    image = dict(width=30, height=20)
    coco = {
        "info": {"year": 2017}, "licenses": [{"id": 1, "name": "x"}],
        "images": [{"id": 7, "file_name": "a.jpg", "license": 1, **image},
                   {"id": 3, "file_name": "sub/b.jpg", **image},
                   {"id": 9, "file_name": "c.jpg", **image}],
        "annotations": [
            {"id": 11, "image_id": 3, "category_id": 5, "bbox": [1.123456789012345, 2, 3.5, 4],
             "area": 14.0, "iscrowd": 0, "segmentation": [[1, 2, 3, 4, 5, 6]]},
            {"id": 2, "image_id": 7, "category_id": 9, "bbox": [0, 0, 10, 10], "area": 100,
             "iscrowd": 1, "segmentation": {"counts": [1, 2], "size": [20, 30]}},
            {"id": 5, "image_id": 3, "category_id": 9, "bbox": [5, 5, 2, 2], "area": 4,
             "iscrowd": 0},
            # dropped by CocoDataset: an area of 0, an ignore flag
            {"id": 6, "image_id": 9, "category_id": 5, "bbox": [2, 2, 5, 5], "area": 0,
             "iscrowd": 0, "segmentation": [[2, 2, 7, 2, 7, 7]]},
            {"id": 8, "image_id": 9, "category_id": 9, "bbox": [1, 1, 6, 6], "area": 36,
             "iscrowd": 0, "ignore": 1}],
        "categories": [{"id": 9, "name": "dog"},
                       {"id": 5, "name": "cat", "supercategory": "animal"}]}
    (src / "annotations").mkdir()
    (src / "annotations/instances_val2017.json").write_text(json.dumps(coco))

    assert convert(str(src), str(tmp_path / "dl"), progress=False) == [
        str(tmp_path / "dl/val2017")]
    convert(str(tmp_path / "dl"), str(tmp_path / "back"), progress=False)
    assert json.loads((tmp_path / "back/annotations/instances_val2017.json").read_text()) == coco
    for name, data in files.items():
        assert (tmp_path / "back/images/val2017" / name).read_bytes() == data, name

    init_default_scope("mmdet")
    lake = DATASETS.build(dict(type="DeepLakeDetDataset", path=str(tmp_path / "dl/val2017"),
                               pipeline=[], test_mode=True))
    stock = DATASETS.build(dict(
        type="CocoDataset", data_root=str(src), ann_file="annotations/instances_val2017.json",
        data_prefix=dict(img="images/val2017/"), metainfo=dict(classes=("dog", "cat")),
        pipeline=[], test_mode=True))
    assert lake.metainfo["classes"] == ("dog", "cat")
    assert len(lake) == len(stock) == 3
    for ours, theirs in zip(lake, stock):
        assert ours["img_id"] == theirs["img_id"]
        assert ours["instances"] == theirs["instances"]  # boxes, labels, flags, masks
    assert [i.get("mask") for i in lake[1]["instances"]] == [[[1, 2, 3, 4, 5, 6]], None]
    assert lake[0]["instances"][0]["mask"] == {"counts": [1, 2], "size": [20, 30]}
    assert lake[2]["instances"] == []  # area 0 and ignore: dropped


def test_convert_without_the_plugin_says_what_to_install(tmp_path):
    """A process that does not load cplugins-deeplake (CPLUGINS_LOAD_PLUGINS names another
    plugin) has no converter: `cplugins data convert` says, in one line, which plugin brings
    it, and exits 2."""
    import os

    env = dict(os.environ, CPLUGINS_LOAD_PLUGINS="augfpn")
    result = subprocess.run([sys.executable, "-m", "cplugins.cli", "data", "convert",
                             str(tmp_path / "src"), str(tmp_path / "dst")],
                            env=env, capture_output=True, text=True)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == ["error: `cplugins data convert` comes with the cplugins-deeplake plugin, "
                     "which is not installed: pip install cplugins-deeplake (datasets/deeplake "
                     "in this repository)"], result.stderr
