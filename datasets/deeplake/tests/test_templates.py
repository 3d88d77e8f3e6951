"""``--data`` of templates takes a folder of Deep Lake datasets (``train/``, ``val/``, as
``cplugins data convert`` writes them) for detection, classification and segmentation."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
TRAIN = str(REPO / "tools" / "train.py")
NO_WORKERS = [f"{split}_dataloader.{key}={value}" for split in ("train", "val", "test")
              for key, value in (("num_workers", 0), ("persistent_workers", False))]
#: a barebones detection config: RetinaNet on a 16..128-channel ResNet-18, 128x96 images
TINY_DETECTOR = """
    _base_ = 'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py'
    model = dict(backbone=dict(_delete_=True, type='ResNet', depth=18, base_channels=16,
                               out_indices=(0, 1, 2, 3), norm_cfg=dict(type='BN'),
                               init_cfg=None),
                 neck=dict(in_channels=[16, 32, 64, 128], out_channels=32),
                 bbox_head=dict(in_channels=32, feat_channels=32, stacked_convs=1),
                 test_cfg=dict(score_thr=0.0))  # untrained: keep its boxes
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
                dict(type='Resize', scale=(128, 96), keep_ratio=True),
                dict(type='PackDetInputs')]
    train_dataloader = dict(batch_size=2, dataset=dict(pipeline=pipeline))
    train_cfg = dict(max_epochs=1)
    """


@pytest.fixture(scope="module")
def lake_sets(shapes_deeplake, tmp_path_factory) -> dict[str, Path]:
    """``{task: folder of train/ and val/ Deep Lake datasets}`` (tiny shapes sets)."""
    from cplugins_deeplake.convert import convert

    from cplugins.shapes import make_shapes_classification, make_shapes_segmentation

    root = tmp_path_factory.mktemp("deeplake_templates")
    cls = make_shapes_classification(root / "cls", num_train=4, num_val=3, image_size=32, seed=1)
    seg = make_shapes_segmentation(root / "seg", num_train=4, num_val=2, image_size=(64, 64),
                                   seed=1)
    convert(cls["data_root"], str(root / "cls_dl"), progress=False)
    convert(seg["data_root"], str(root / "seg_dl"), progress=False)
    return {"detection": shapes_deeplake, "classification": root / "cls_dl",
            "segmentation": root / "seg_dl"}


def _types(node) -> list[str]:
    if isinstance(node, dict):
        return ([node["type"]] if "type" in node else []) + [
            t for v in node.values() for t in _types(v)]
    return [t for v in node for t in _types(v)] if isinstance(node, list) else []


def test_rendered_configs_read_deeplake(lake_sets):
    """Nested pipelines (YOLOX's mosaic wrapper) included; CocoMetric takes the ground truth
    from the samples; the plugin is imported by the config; classes come from the data."""
    from cplugins.templates.rendering import render

    cfg = render("MMDetection_YOLOX", data=lake_sets["detection"]).to_dict()
    assert cfg["custom_imports"]["imports"][:2] == ["cplugins.templates.runtime",
                                                   "cplugins_deeplake"]
    train = cfg["train_dataloader"]["dataset"]
    types = _types(train)
    assert "DeepLakeDetDataset" in types and "LoadImageFromDeepLake" in types, types
    assert "LoadImageFromFile" not in types and "CocoDataset" not in types
    assert cfg["val_dataloader"]["dataset"]["path"] == str(lake_sets["detection"] / "val")
    assert cfg["val_evaluator"]["ann_file"] is None
    pack = next(t for t in cfg["val_dataloader"]["dataset"]["pipeline"]
                if t["type"] == "PackDetInputs")
    assert "instances" in pack["meta_keys"]
    assert cfg["model"]["bbox_head"]["num_classes"] == 3

    seg = render("MMSegmentation_SegFormer", data=lake_sets["segmentation"]).to_dict()
    val = seg["val_dataloader"]["dataset"]
    assert val["type"] == "DeepLakeSegDataset"
    assert [t["type"] for t in val["pipeline"]][:3] == [
        "LoadImageFromDeepLake", "Resize", "LoadAnnotationsFromDeepLake"]
    assert seg["model"]["decode_head"]["num_classes"] == 4


def test_render_without_the_plugin_names_the_distribution(lake_sets):
    """A process that does not load cplugins-deeplake (CPLUGINS_LOAD_PLUGINS names another
    plugin) cannot read the sets: the error names the plugin and how to install it."""
    import os
    import subprocess

    code = ("from cplugins.data.layouts import DataError, resolve_data\n"
            "try:\n"
            f"    resolve_data('detection', {str(lake_sets['detection'])!r})\n"
            "except DataError as exc:\n"
            "    print(exc)\n")
    env = dict(os.environ, CPLUGINS_LOAD_PLUGINS="augfpn")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert re.search(r"need the cplugins-deeplake plugin .*: pip install cplugins-deeplake", out)


def test_a_dataset_of_another_task_is_one_clear_error(lake_sets, tmp_path):
    import shutil

    from cplugins.data.layouts import DataError, resolve_data

    with pytest.raises(DataError, match="cannot tell which column holds gt_bboxes: no column "
                                        "of kind BoundingBox"):
        resolve_data("detection", lake_sets["segmentation"])
    shutil.copytree(lake_sets["classification"] / "train", tmp_path / "train")
    (tmp_path / "val").mkdir()
    with pytest.raises(DataError, match=r"val/ is not a Deep Lake dataset \(the other split "
                                        r"is\)"):
        resolve_data("classification", tmp_path)


@pytest.mark.slow
def test_tools_train_template_trains_from_deeplake(lake_sets, tmp_path):
    """``tools/train.py --template NAME --data DIR``, one template per task, 2 iterations and
    validation each: exit 0, a checkpoint, the validation metric in the log. The three runs
    share one interpreter (``runpy``, as ``python tools/train.py`` runs it) to import once."""
    (tmp_path / "tiny_detector.py").write_text(textwrap.dedent(TINY_DETECTOR))
    runs = {
        "detection": (["tiny_detector.py", "--template", "MMDetection"], "coco/bbox_mAP"),
        "classification": (["--template", "Clarifai_InceptionBatchNorm", "--set",
                            "image_size=32", "batch_size=2", "num_epochs=1", "init_epochs=1",
                            "step_epochs=1"], "multi-label/mAP"),
        "segmentation": (["--template", "MMSegmentation_SegFormer", "--set", "image_size=64",
                          "batch_size=2", "warmup_iters=1", "num_epochs=1"], "mIoU"),
    }
    commands = [args + ["--data", str(lake_sets[task]), "--work-dir", str(tmp_path / task),
                        "--no-progress", "--cfg-options", *NO_WORKERS]
                for task, (args, _) in runs.items()]
    code = textwrap.dedent(f"""
        import json, runpy, sys
        codes = []
        for argv in json.loads(sys.argv[1]):
            sys.argv = [{TRAIN!r}] + argv
            try:
                runpy.run_path({TRAIN!r}, run_name="__main__")
                codes.append(0)
            except SystemExit as exc:
                print(exc, file=sys.stderr)
                codes.append(exc.code if isinstance(exc.code, int) else 1)
        print("EXIT" + json.dumps(codes))
        """)
    result = subprocess.run([sys.executable, "-c", code, json.dumps(commands)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "EXIT" in result.stdout, output[-3000:]
    assert json.loads(result.stdout.split("EXIT", 1)[1]) == [0, 0, 0], output[-3000:]
    dataset_types = {"detection": "DeepLakeDetDataset", "classification": "DeepLakeClsDataset",
                     "segmentation": "DeepLakeSegDataset"}
    for task, (_, metric) in runs.items():
        work_dir = tmp_path / task
        assert (work_dir / "epoch_1.pth").is_file(), (task, output[-3000:])
        config = next(p for p in work_dir.glob("*.py")).read_text()
        assert dataset_types[task] in config and "LoadImageFromDeepLake" in config, task
        log = next(work_dir.glob("*/*.log")).read_text()
        assert "Iter(train)" in log or "Epoch(train)" in log, task
        assert f"{metric}: " in log, (task, log[-2000:])
