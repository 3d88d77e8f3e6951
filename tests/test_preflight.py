"""What ``tools/train.py`` / ``tools/test.py`` refuse before anything is built
(``cplugins.training.preflight``): mmdet 2 names in an mmdet 3 config, a metric's missing
package, checkpoints that cannot be downloaded; each one line naming the config key, what is
wrong and what to give instead. mmdet 3's own configs raise nothing."""
from __future__ import annotations

import textwrap
import time

import pytest
from mmengine.config import Config
from training_setup import error_lines, train, write_tiny_config

from cplugins.training.errors import PreflightError
from cplugins.training.preflight import (
    check_before_build,
    checkpoint_url,
    ground_truth_not_packed,
    missing_packages,
    mmdet2_names,
    unreachable_checkpoints,
)

#: refused at once: nothing listens on the discard port of this machine
UNREACHABLE = "http://127.0.0.1:9/mask_rcnn_coco.pth"

MMDET2_CONFIG = """
_base_ = 'mmdet::cityscapes/mask-rcnn_r50_fpn_1x_cityscapes.py'
img_norm_cfg = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', img_scale=[(2048, 800), (2048, 1024)], keep_ratio=True),
    dict(type='RandomFlip', flip_ratio=0.5),
    dict(type='AutoAugment', policies=[
        [dict(type='Rotate', level=5, img_fill_val=(124, 116, 104), prob=0.5)],
        [dict(type='Translate', level=5, prob=0.5, img_fill_val=(124, 116, 104),
              max_translate_offset=250.)],
        [dict(type='ColorTransform', level=3, prob=0.5)]]),
    dict(type='Normalize', **img_norm_cfg),
    dict(type='Pad', size_divisor=32),
    dict(type='DefaultFormatBundle'),
    dict(type='Collect', keys=['img', 'gt_bboxes', 'gt_labels', 'gt_masks']),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiScaleFlipAug', img_scale=(2048, 1024), flip=False, transforms=[
        dict(type='Resize', keep_ratio=True), dict(type='ImageToTensor', keys=['img']),
        dict(type='Collect', keys=['img'])])]
train_dataloader = dict(dataset=dict(dataset=dict(pipeline=train_pipeline)))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
lr_config = dict(policy='step', step=[7])
"""


def test_mmdet2_names_each_get_their_mmdet3_name(tmp_path):
    config = tmp_path / "mmdet2_style.py"
    config.write_text(MMDET2_CONFIG)
    errors, warnings = mmdet2_names(Config.fromfile(str(config)))
    expected = [
        "train_pipeline[2]: Resize takes no argument 'img_scale' in mmdet 3 (an mmdet 2 "
        "argument): use scale;",
        "train_pipeline[3]: RandomFlip takes no argument 'flip_ratio' in mmdet 3 (an mmdet 2 "
        "argument): use prob;",
        "train_pipeline[4].policies[0][0]: Rotate takes no argument 'img_fill_val' in mmdet 3 "
        "(an mmdet 2 argument): use img_border_value;",
        "train_pipeline[4].policies[1][0]: type='Translate' is an mmdet 2 transform that mmdet "
        "3 removed; use TranslateX or TranslateY",
        "train_pipeline[4].policies[1][0]: TranslateX takes no argument 'img_fill_val' in mmdet "
        "3 (an mmdet 2 argument): use img_border_value;",
        "train_pipeline[4].policies[1][0]: TranslateX takes no argument 'max_translate_offset' "
        "in mmdet 3 (an mmdet 2 argument): use max_mag, a fraction of the image width",
        "train_pipeline[5]: type='Normalize' normalises the image a second time",
        "train_pipeline[7]: type='DefaultFormatBundle' is an mmdet 2 transform that mmdet 3 "
        "removed; use PackDetInputs",
        "train_pipeline[8]: type='Collect' is an mmdet 2 transform that mmdet 3 removed; use "
        "PackDetInputs",
        "test_pipeline[1]: MultiScaleFlipAug takes no argument 'img_scale' in mmdet 3 (an "
        "mmdet 2 argument): use scales",
        "test_pipeline[1]: MultiScaleFlipAug takes no argument 'flip' in mmdet 3 (an mmdet 2 "
        "argument): use allow_flip;",
        "test_pipeline[1].transforms[1]: type='ImageToTensor' is an mmdet 2 transform; in "
        "mmdet 3 use PackDetInputs",
        "test_pipeline[1].transforms[2]: type='Collect' is an mmdet 2 transform",
    ]
    assert len(errors) == len(expected), "\n".join(errors)
    for line, start in zip(errors, expected):
        assert line.startswith(start), (line, start)
        assert "\n" not in line
    assert warnings == [
        "lr_config: an mmcv 1 (mmdet 2) key that mmengine ignores; use param_scheduler",
        "train_pipeline[4].policies[2][0]: type='ColorTransform' changes nothing: mmdet 3's "
        "ColorTransform is the base class of the colour transforms and changes nothing; mmdet "
        "2's ColorTransform is mmdet 3's Color"]
    # Pad still exists in mmdet 3; the same pipeline is reported once, not per dataloader
    assert not any("Pad" in line or "train_dataloader" in line for line in errors)


@pytest.mark.parametrize("name", [
    "mmdet::cityscapes/mask-rcnn_r50_fpn_1x_cityscapes.py",
    "mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py",
    "mmdet::yolox/yolox_s_8xb8-300e_coco.py",
    "mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py",
    "mmdet::autoassign/autoassign_r50-caffe_fpn_1x_coco.py",
])
def test_mmdet3_configs_pass(name, tmp_path):
    config = tmp_path / "config.py"
    config.write_text(f"_base_ = {name!r}\n")
    cfg = Config.fromfile(str(config))
    for purpose in ("train", "test"):
        assert mmdet2_names(cfg, purpose) == ([], [])
        assert missing_packages(cfg, purpose) == []


def test_missing_package_is_named_with_its_key_and_pip_command():
    cfg = Config(dict(val_evaluator=[
        dict(type="CocoMetric", ann_file="a.json"),
        dict(type="CityScapesMetric", seg_prefix="gtFine/val", outfile_prefix="out"),
        dict(type="mmdet.LVISMetric", ann_file="lvis.json")],
        test_evaluator=dict(type="LVISMetric", ann_file="lvis.json")))
    line = ("val_evaluator[2] (type='mmdet.LVISMetric') needs the package lvis, which cannot "
            "be imported (No module named 'lvis'): pip install "
            "'git+https://github.com/lvis-dataset/lvis-api.git'")
    assert missing_packages(cfg, "train") == [line]  # cityscapesscripts is in the stack
    assert missing_packages(cfg, "test") == [line.replace("val_evaluator[2]", "test_evaluator")
                                             .replace("mmdet.LVISMetric", "LVISMetric")]


def test_checkpoint_names_resolve_to_the_url_mmengine_downloads():
    assert checkpoint_url("torchvision://resnet50") == \
        "https://download.pytorch.org/models/resnet50-0676ba61.pth"
    assert checkpoint_url("open-mmlab://detectron2/resnet50_caffe").startswith(
        "https://download.openmmlab.com/")
    assert checkpoint_url(UNREACHABLE) == UNREACHABLE
    assert checkpoint_url("/data/ckpt.pth") is None
    assert checkpoint_url("s3://bucket/ckpt.pth") is None


def test_unreachable_checkpoints_fail_in_seconds(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cfg = Config(dict(load_from=UNREACHABLE, model=dict(backbone=dict(
        init_cfg=dict(type="Pretrained", checkpoint="http://127.0.0.1:9/resnet50.pth")))))
    start = time.monotonic()
    with pytest.raises(PreflightError) as caught:
        check_before_build(cfg, "train")
    assert time.monotonic() - start < 5
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    first, second = str(caught.value).split("\nerror: ")
    assert first == (
        f"load_from={UNREACHABLE!r} cannot be downloaded: it cannot be reached within 5 s "
        "(ConnectionRefusedError: [Errno 111] Connection refused). Download the file where "
        "there is network and pass the local path: --cfg-options "
        f"load_from=/path/mask_rcnn_coco.pth (or copy it to {cache}/mask_rcnn_coco.pth, "
        "where mmengine looks first)")
    assert second.startswith("model.backbone.init_cfg.checkpoint='http://127.0.0.1:9/"
                             "resnet50.pth' cannot be downloaded")
    assert second.endswith("with load_from set these weights are overwritten anyway: "
                           "--cfg-options model.backbone.init_cfg=None")

    # testing loads no init_cfg weights; a checkpoint in mmengine's cache needs no network
    cache.mkdir(parents=True)
    (cache / "mask_rcnn_coco.pth").write_bytes(b"cached")
    assert unreachable_checkpoints(cfg, "test") == []
    assert len(unreachable_checkpoints(cfg, "train")) == 1
    assert unreachable_checkpoints(cfg, "train", load_from=None)[0].startswith(
        "model.backbone.init_cfg.checkpoint=")


def test_train_refuses_before_building_one_line_each(tmp_path):
    """A fine-tuning config from an mmdet 2 tutorial, offline: every problem at once."""
    config = write_tiny_config(tmp_path, extra=textwrap.dedent(f"""
        load_from = {UNREACHABLE!r}
        train_pipeline = [
            dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
            dict(type='Resize', img_scale=(80, 64), keep_ratio=True),
            dict(type='PackDetInputs')]
        train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
        val_evaluator = dict(type='LVISMetric', ann_file='lvis_val.json')
        lr_config = dict(policy='step', step=[3])
    """))
    start = time.monotonic()
    result = train(config, tmp_path / "work")
    elapsed = time.monotonic() - start
    assert result.returncode != 0
    errors = error_lines(result)
    assert [line.split(":")[0] for line in errors] == ["error"] * 3, result.stderr[-3000:]
    assert errors[0].startswith("error: train_pipeline[2]: Resize takes no argument "
                                "'img_scale' in mmdet 3 (an mmdet 2 argument): use scale;")
    assert errors[1].startswith("error: val_evaluator (type='LVISMetric') needs the package "
                                "lvis")
    assert errors[2].startswith(f"error: load_from={UNREACHABLE!r} cannot be downloaded")
    assert ("warning: lr_config: an mmcv 1 (mmdet 2) key that mmengine ignores; use "
            "param_scheduler") in result.stderr.splitlines()
    assert "Traceback" not in result.stderr
    assert not list((tmp_path / "work").glob("*/*.log"))  # no runner was built
    assert elapsed < 120, elapsed  # imports included; the checks themselves take < 1 s


def test_test_refuses_a_metric_without_its_package(tmp_path):
    import torch
    from helpers import run_python
    from training_setup import TEST

    config = write_tiny_config(tmp_path, extra="test_evaluator = dict(type='LVISMetric', "
                                               "ann_file='lvis_val.json')\n")
    checkpoint = tmp_path / "model.pth"
    torch.save({"state_dict": {}}, checkpoint)
    result = run_python("", args=[TEST, str(config), str(checkpoint),
                                  "--work-dir", str(tmp_path / "work")])
    assert result.returncode != 0
    assert error_lines(result) == [
        "error: test_evaluator (type='LVISMetric') needs the package lvis, which cannot be "
        "imported (No module named 'lvis'): pip install "
        "'git+https://github.com/lvis-dataset/lvis-api.git'"], result.stderr[-3000:]
    assert not list((tmp_path / "work").glob("*/*.log"))  # no runner was built


def test_a_stock_build_names_the_mmdet3_argument_too():
    """Runners other than tools/train.py (mmengine's own, mmdet's train.py) build the
    pipeline without the pre-build check: the TypeError says what mmdet 3 takes."""
    from mmdet.registry import TRANSFORMS
    from mmengine.registry import init_default_scope

    import cplugins.all  # noqa: F401  (what a config's custom_imports does)

    init_default_scope("mmdet")
    with pytest.raises(TypeError) as caught:
        TRANSFORMS.build(dict(type="Compose", transforms=[
            dict(type="LoadImageFromFile"), dict(type="RandomFlip", flip_ratio=0.5)]))
    assert str(caught.value) == (
        "RandomFlip.__init__() got an unexpected keyword argument 'flip_ratio'; RandomFlip "
        "takes no 'flip_ratio' in mmdet 3 (an mmdet 2 argument): use prob")
    with pytest.raises(TypeError) as caught:  # nothing to add: mmengine's message as it was
        TRANSFORMS.build(dict(type="RandomFlip", prob=0.5, flip_odds=0.5))
    assert str(caught.value) == ("RandomFlip.__init__() got an unexpected keyword argument "
                                 "'flip_odds'")


def test_a_coco_metric_without_ann_file_needs_instances_packed(tmp_path):
    """``CocoMetric(ann_file=None)`` (Deep Lake data) reads the ground truth from the data
    samples: a val pipeline whose PackDetInputs does not pack ``instances`` trained a whole
    run and failed at its first validation; it is refused before anything is built."""
    config = write_tiny_config(tmp_path, extra=textwrap.dedent("""
        val_evaluator = dict(type='CocoMetric', ann_file=None, metric='bbox')
    """))
    result = train(config, tmp_path / "work")
    assert result.returncode != 0
    assert error_lines(result) == [
        "error: val_evaluator: CocoMetric without ann_file reads the ground truth from the data "
        "samples, but val_dataloader.dataset.pipeline[3] (PackDetInputs) does not pack it: add "
        "'instances' to its meta_keys (now: img_id, img_path, ori_shape, img_shape, "
        "scale_factor), or give the metric an ann_file"], result.stderr[-3000:]
    assert not list((tmp_path / "work").glob("*/*.log"))  # no runner was built
    cfg = Config.fromfile(config)
    cfg.val_evaluator = dict(type="CocoMetric", ann_file=None)
    pack = cfg.val_dataloader.dataset.pipeline[-1]
    pack.meta_keys = (*pack.meta_keys, "instances")
    assert ground_truth_not_packed(cfg) == []
    cfg.val_evaluator = [dict(type="CocoMetric", ann_file="val.json")]  # ann_file: its own
    pack.meta_keys = pack.meta_keys[:-1]
    assert ground_truth_not_packed(cfg) == []
