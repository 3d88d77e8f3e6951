"""2 training iterations + validation (CocoMetric without ann_file) through a stock
``Runner.from_cfg`` on the shapes converted to Deep Lake, with 2 persistent workers."""
from __future__ import annotations

import math

import pytest


def _tiny_retinanet() -> dict:
    from mmengine.config import Config

    cfg = Config.fromstring("_base_ = 'mmdet::_base_/models/retinanet_r50_fpn.py'", ".py")
    model = cfg.model.to_dict()
    model["backbone"].update(depth=18, base_channels=16, init_cfg=None, frozen_stages=-1,
                             norm_eval=False)
    model["neck"].update(in_channels=[16, 32, 64, 128], out_channels=32)
    model["bbox_head"].update(in_channels=32, feat_channels=32, stacked_convs=1, num_classes=3)
    model["test_cfg"].update(nms_pre=100, max_per_img=20, score_thr=0.0)  # untrained: keep boxes
    return model


def _config(shapes_coco: dict, shapes_deeplake, work_dir, max_iters: int = 2):
    """Tiny RetinaNet on the Deep Lake shapes (2 persistent workers), validated with
    CocoMetric without ann_file; its test split is the same images as the COCO folder."""
    from mmengine.config import Config

    def loader(split: str, pipeline: list, **kwargs) -> dict:
        return dict(batch_size=2, num_workers=2, persistent_workers=True,
                    sampler=dict(type="DefaultSampler", shuffle=split == "train"),
                    dataset=dict(type="DeepLakeDetDataset", path=str(shapes_deeplake / split),
                                 pipeline=pipeline, test_mode=split == "val"), **kwargs)

    load = [dict(type="LoadImageFromDeepLake"), dict(type="LoadAnnotations", with_bbox=True),
            dict(type="Resize", scale=(96, 64), keep_ratio=True)]
    train = load + [dict(type="RandomFlip", prob=0.5), dict(type="PackDetInputs")]
    val = load + [dict(type="PackDetInputs", meta_keys=(
        "img_id", "img_path", "ori_shape", "img_shape", "scale_factor", "instances"))]
    return Config(dict(
        default_scope="mmdet", custom_imports=dict(imports=["cplugins_deeplake"]),
        work_dir=str(work_dir), model=_tiny_retinanet(),
        train_dataloader=loader("train", train),
        val_dataloader=dict(loader("val", val, drop_last=False), num_workers=0,
                            persistent_workers=False),
        val_evaluator=dict(type="CocoMetric", metric="bbox", ann_file=None),
        train_cfg=dict(type="IterBasedTrainLoop", max_iters=max_iters, val_interval=2),
        val_cfg=dict(type="ValLoop"),
        # the same images as a COCO folder, evaluated against its annotation file
        test_dataloader=dict(
            batch_size=2, num_workers=0, sampler=dict(type="DefaultSampler", shuffle=False),
            dataset=dict(type="CocoDataset", **shapes_coco["val"], test_mode=True,
                         pipeline=[dict(type="LoadImageFromFile")] + val[1:])),
        test_evaluator=dict(type="CocoMetric", metric="bbox",
                            ann_file=f"{shapes_coco['data_root']}/{shapes_coco['val_ann_file']}"),
        test_cfg=dict(type="TestLoop"),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.005, momentum=0.9)),
        default_hooks=dict(checkpoint=dict(type="CheckpointHook", interval=2, by_epoch=False),
                           logger=dict(type="LoggerHook", interval=1)),
        env_cfg=dict(dist_cfg=dict(backend="gloo")), randomness=dict(seed=0)))


@pytest.mark.slow
def test_runner_trains_and_validates_from_deeplake(shapes_coco, shapes_deeplake, tmp_path):
    from mmengine.runner import Runner

    runner = Runner.from_cfg(_config(shapes_coco, shapes_deeplake, tmp_path / "work"))
    runner.train()
    assert runner.iter == 2
    loss = runner.message_hub.get_scalar("train/loss").current()
    assert math.isfinite(loss) and loss > 0
    metrics = runner.message_hub.log_scalars
    assert "val/coco/bbox_mAP" in metrics, sorted(metrics)
    assert (tmp_path / "work" / "iter_2.pth").is_file()
    # the same weights on the COCO folder: the same numbers
    lake = {k: runner.message_hub.get_scalar(f"val/{k}").current() for k in COCO_KEYS}
    coco = runner.test()
    assert {k: coco[k] for k in COCO_KEYS} == lake
    assert lake["coco/bbox_mAP_50"] > 0  # an untrained model: low, but not a trivial 0


COCO_KEYS = ("coco/bbox_mAP", "coco/bbox_mAP_50", "coco/bbox_mAP_75", "coco/bbox_mAP_s")


@pytest.mark.slow
def test_train_detector_without_validation(shapes_coco, shapes_deeplake, tmp_path):
    from cplugins_deeplake.train import train_detector

    cfg = _config(shapes_coco, shapes_deeplake, tmp_path / "work", max_iters=1)
    cfg.train_dataloader.update(num_workers=0, persistent_workers=False)  # workers: above
    runner = train_detector(cfg, distributed=False, validate=False)
    assert runner.iter == 1 and runner.val_loop is None
    assert not any(k.startswith("val/") for k in runner.message_hub.log_scalars)
    assert cfg.val_dataloader is not None  # the caller's config is left as it was


def test_tools_train_reports_a_bad_dataset_in_one_line(shapes_coco, shapes_deeplake,
                                                        tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[3]
    cfg = _config(shapes_coco, shapes_deeplake, tmp_path / "work")
    cfg.train_dataloader.dataset.path = str(tmp_path / "missing")
    cfg.dump(str(tmp_path / "bad.py"))
    result = subprocess.run([sys.executable, str(repo / "tools/train.py"), str(tmp_path / "bad.py"),
                             "--no-progress"], capture_output=True, text=True, timeout=300,
                            cwd=repo)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1].startswith(
        f"error: {str(tmp_path / 'missing')!r} is not a Deep Lake dataset")


@pytest.mark.slow
def test_train_detector_maps_deeplake_mmdet2_keys(shapes_coco, shapes_deeplake, tmp_path):
    """deeplake_dataloader -> the dataloaders' batch size, workers and shuffling;
    deeplake_metrics_format='COCO' -> CocoMetric from the samples (the stock base config's
    ann_file, absent here, and PackDetInputs without instances are fixed)."""
    from cplugins_deeplake.train import train_detector

    cfg = _config(shapes_coco, shapes_deeplake, tmp_path / "work", max_iters=1)
    cfg.train_dataloader.dataset.deeplake_dataloader = dict(batch_size=1, num_workers=0,
                                                            shuffle=False)
    cfg.val_dataloader.dataset.deeplake_dataloader = dict(batch_size=1)
    cfg.val_dataloader.dataset.pipeline[-1] = dict(type="PackDetInputs")
    cfg.val_evaluator = dict(type="CocoMetric", metric="bbox",
                             ann_file=str(tmp_path / "instances_val2017.json"))
    cfg.deeplake_metrics_format = "COCO"
    cfg.evaluation = dict(metric=["bbox"], interval=1)  # mmdet 2's, read for the metric
    runner = train_detector(cfg)
    loader = runner.train_dataloader
    assert (loader.batch_size, loader.num_workers, loader.sampler.shuffle) == (1, 0, False)
    assert runner.val_dataloader.batch_size == 1
    assert runner.iter == 1
    assert runner.message_hub.get_scalar("val/coco/bbox_mAP_50").current() >= 0


def test_deeplake_mmdet2_keys_that_do_not_map_are_one_clear_error(shapes_coco, shapes_deeplake,
                                                                   tmp_path):
    from cplugins_deeplake.source import DeepLakeError
    from cplugins_deeplake.train import apply_deeplake_keys

    cfg = _config(shapes_coco, shapes_deeplake, tmp_path)
    cfg.deeplake_metrics_format = "PascalVOC"
    with pytest.raises(DeepLakeError, match=r"deeplake_metrics_format='PascalVOC' is not "
                                            r"supported; allowed: 'COCO' \(CocoMetric\)"):
        apply_deeplake_keys(cfg)
    cfg = _config(shapes_coco, shapes_deeplake, tmp_path)
    cfg.train_dataloader.dataset.deeplake_dataloader = dict(batch_size=2, prefetch=4)
    with pytest.raises(DeepLakeError, match="train_dataloader.dataset.deeplake_dataloader: "
                                            "unknown key.s. prefetch; allowed: batch_size, "
                                            "num_workers, shuffle"):
        apply_deeplake_keys(cfg)
