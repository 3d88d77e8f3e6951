"""The synthetic Cityscapes set (``cplugins.data.cityscapes``) as mmdet reads and scores it:
mmdet's own ``CityscapesDataset`` loads it, and ``CityScapesMetric`` (cityscapesscripts'
evaluation of the ``gtFine`` png files) and ``CocoMetric`` score the ground truth given as
predictions AP 1.0 exactly, and less when one instance is left out. That checks the
generator and the pinned ``cityscapesscripts`` (with numpy 2) together."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cplugins.data.cityscapes import CITYSCAPES_CLASSES, make_cityscapes

# pycocotools' mask.decode trips a numpy 2 DeprecationWarning (not ours)
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


@pytest.fixture(scope="module")
def cityscapes(tmp_path_factory) -> dict:
    return make_cityscapes(tmp_path_factory.mktemp("cs") / "cityscapes", num_train=2,
                           num_val=3, seed=0)


def test_layout_ids_and_determinism(cityscapes, tmp_path):
    from cityscapesscripts.helpers.annotation import Annotation
    from cityscapesscripts.helpers.labels import name2label
    from cityscapesscripts.preparation.json2instanceImg import createInstanceImage

    root = Path(cityscapes["data_root"])
    content = json.loads((root / cityscapes["val_ann_file"]).read_text())
    assert [c["name"] for c in content["categories"]] == list(CITYSCAPES_CLASSES)
    assert [c["id"] for c in content["categories"]] == [name2label[n].id
                                                        for n in CITYSCAPES_CLASSES]
    assert len(content["images"]) == 3
    for image in content["images"]:
        img = root / "leftImg8bit" / "val" / image["file_name"]
        stem = str(img).replace("/leftImg8bit/", "/gtFine/", 1)[:-len("leftImg8bit.png")]
        with Image.open(img) as photo:
            assert photo.size == (256, 128) and photo.mode == "RGB"
        ids = np.asarray(Image.open(stem + "gtFine_instanceIds.png"))
        labels = np.asarray(Image.open(stem + "gtFine_labelIds.png"))
        # the label image is the instance image's class ids; instances are class * 1000 + k
        np.testing.assert_array_equal(np.where(ids >= 1000, ids // 1000, ids), labels)
        # gtFine pngs are what cityscapesscripts renders from the polygons file
        annotation = Annotation()
        annotation.fromJsonFile(stem + "gtFine_polygons.json")
        np.testing.assert_array_equal(
            np.asarray(createInstanceImage(annotation, "ids"), np.int64), ids)
        # the COCO json holds one annotation per instance of the png, mask for mask
        anns = [a for a in content["annotations"] if a["image_id"] == image["id"]]
        instances = np.unique(ids[ids >= 1000])
        assert sorted(a["category_id"] for a in anns) == sorted(instances // 1000)
        assert sum(a["area"] for a in anns) == int((ids >= 1000).sum())
        assert all(a["area"] >= 100 for a in anns)  # the Cityscapes evaluation's minimum
    assert min(a["id"] for a in content["annotations"]) == 1  # see the module's docstring

    again = make_cityscapes(tmp_path / "same", num_train=2, num_val=3, seed=0)
    other = make_cityscapes(tmp_path / "other", num_train=2, num_val=3, seed=1)
    assert again["generated"] and _files(root) == _files(tmp_path / "same")
    assert _files(root).keys() == _files(tmp_path / "other").keys()
    assert _files(root) != _files(tmp_path / "other") and other["generated"]
    assert not make_cityscapes(tmp_path / "same", num_train=2, num_val=3, seed=0)["generated"]
    with pytest.raises(ValueError, match="min_objects must be <= max_objects"):
        make_cityscapes(tmp_path / "bad", min_objects=3, max_objects=2)
    with pytest.raises(ValueError, match="image_size"):
        make_cityscapes(tmp_path / "bad", image_size=(32, 256))


def _ground_truth_as_predictions(cityscapes) -> list[dict]:
    import torch
    from mmdet.datasets import CityscapesDataset
    from mmengine.registry import init_default_scope

    init_default_scope("mmdet")
    dataset = CityscapesDataset(**cityscapes["val"], test_mode=True, pipeline=[
        dict(type="LoadImageFromFile"),
        dict(type="LoadAnnotations", with_bbox=True, with_mask=True)])
    assert dataset.metainfo["classes"] == CITYSCAPES_CLASSES and len(dataset) == 3
    samples = []
    for index in range(len(dataset)):
        item = dataset[index]
        labels = torch.as_tensor(item["gt_bboxes_labels"])
        samples.append(dict(
            img_path=item["img_path"], img_id=item["img_id"], ori_shape=item["ori_shape"],
            pred_instances=dict(labels=labels, scores=torch.ones(len(labels)),
                                bboxes=item["gt_bboxes"].tensor,
                                masks=torch.as_tensor(item["gt_masks"].to_ndarray()).bool())))
    return samples, dataset.metainfo


def _score(cityscapes, samples, metainfo, out: Path) -> dict:
    from mmdet.evaluation import CityScapesMetric, CocoMetric

    metrics = [CityScapesMetric(outfile_prefix=str(out), seg_prefix=cityscapes["val_seg_prefix"]),
               CocoMetric(ann_file=str(Path(cityscapes["data_root"]) / cityscapes["val_ann_file"]),
                          metric=["bbox", "segm"])]
    scores = {}
    for metric in metrics:
        metric.dataset_meta = metainfo
        metric.process({}, samples)
        scores.update(metric.evaluate(len(samples)))
    return scores


def test_metrics_score_ground_truth_as_perfect(cityscapes, tmp_path):
    samples, metainfo = _ground_truth_as_predictions(cityscapes)
    assert sum(len(s["pred_instances"]["labels"]) for s in samples) >= 3
    scores = _score(cityscapes, samples, metainfo, tmp_path / "perfect")
    for key in ("cityscapes/mAP", "cityscapes/AP@50", "coco/bbox_mAP", "coco/segm_mAP"):
        assert scores[key] == pytest.approx(1.0), (key, scores)

    # one instance left out of the predictions: a miss, which both metrics see
    fewer = [dict(s, pred_instances=dict(s["pred_instances"])) for s in samples]
    kept = fewer[-1]["pred_instances"]
    for key in ("labels", "scores", "bboxes", "masks"):
        kept[key] = kept[key][1:]
    scores = _score(cityscapes, fewer, metainfo, tmp_path / "fewer")
    for key in ("cityscapes/mAP", "coco/bbox_mAP", "coco/segm_mAP"):
        assert scores[key] < 0.99, (key, scores)


@pytest.mark.slow
def test_mmdet_cityscapes_config_trains_and_evaluates_on_it(tmp_path):
    """mmdet's own Cityscapes Mask R-CNN config (shrunk) through tools/train.py on the set
    its ``synthetic_data`` declares: data check, 2 iterations, both metrics."""
    import textwrap

    from training_setup import train

    data_root = f"{tmp_path}/cityscapes/"
    config = tmp_path / "mask-rcnn_r18_tiny_cityscapes.py"
    config.write_text(textwrap.dedent(f"""
        _base_ = 'mmdet::cityscapes/mask-rcnn_r50_fpn_1x_cityscapes.py'
        data_root = {data_root!r}
        synthetic_data = dict(task='cityscapes', data_root=data_root, num_train=4, num_val=2)
        model = dict(
            backbone=dict(depth=18, base_channels=16, init_cfg=None),
            neck=dict(in_channels=[16, 32, 64, 128], out_channels=32),
            rpn_head=dict(in_channels=32, feat_channels=32),
            roi_head=dict(bbox_roi_extractor=dict(out_channels=32),
                          bbox_head=dict(in_channels=32, fc_out_channels=64),
                          mask_roi_extractor=dict(out_channels=32),
                          mask_head=dict(in_channels=32, conv_out_channels=32)))
        train_pipeline = [
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
            dict(type='Resize', scale=(256, 128), keep_ratio=True),
            dict(type='RandomFlip', prob=0.5), dict(type='PackDetInputs')]
        test_pipeline = [
            dict(type='LoadImageFromFile'), dict(type='Resize', scale=(256, 128), keep_ratio=True),
            dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
            dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                                  'img_shape', 'scale_factor'))]
        train_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(
            times=1, dataset=dict(data_root=data_root, pipeline=train_pipeline)))
        val_dataloader = dict(num_workers=0, persistent_workers=False,
                              dataset=dict(data_root=data_root, pipeline=test_pipeline))
        test_dataloader = val_dataloader
        val_evaluator = [
            dict(type='CocoMetric', metric=['bbox', 'segm'],
                 ann_file=data_root + 'annotations/instancesonly_filtered_gtFine_val.json'),
            dict(type='CityScapesMetric', seg_prefix=data_root + 'gtFine/val',
                 outfile_prefix={str(tmp_path / 'cityscapes_metric')!r})]
        test_evaluator = val_evaluator
        train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=2, val_interval=2)
        param_scheduler = []
        load_from = None  # the COCO checkpoint URL of the base config: no network here
        default_hooks = dict(logger=dict(interval=1),
                             checkpoint=dict(by_epoch=False, interval=2))
    """))
    result = train(config, tmp_path / "work")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "instancesonly_filtered_gtFine_val.json (images in" in result.stderr
    logs = "".join(p.read_text() for p in (tmp_path / "work").glob("*/*.log"))
    for key in ("coco/bbox_mAP", "coco/segm_mAP", "cityscapes/mAP", "cityscapes/AP@50"):
        assert f"{key}: " in logs, key
    assert (tmp_path / "work" / "iter_2.pth").is_file()
