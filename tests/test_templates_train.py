"""Every template builds, trains 2 iterations and validates on its task's synthetic shapes data.

CPU budget: all templates train in this one pytest process (imports are paid once), on 4 (or 2)
training images of 96x128 / 32x32 / 64x64 px with the smallest sizes each template allows.
Two subprocess tests cover the command-line route (``tools/train.py --template`` generating the
synthetic set itself) and a stock mmengine ``Runner`` running a rendered file, including the
fail-fast message for a checkpoint URL that cannot be reached.
"""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from helpers import REPO, run_python

from cplugins.templates import TemplateValidationError, common
from cplugins.templates.rendering import render, write_config

pytestmark = pytest.mark.slow

#: per template: data task, hyperparameters that keep it CPU-sized, the metric validation gives
DET, CLS, SEG = "detection", "classification", "segmentation"
TINY: dict[str, tuple[str, dict, str]] = {
    "MMDetection_YOLOX": (DET, dict(model_size="tiny", image_size=128, random_resize_lower=128,
                                    random_resize_upper=160), "coco/bbox_mAP"),
    "MMDetection_YOLOF": (DET, dict(image_size=[96]), "coco/bbox_mAP"),
    "MMDetection_SSD": (DET, dict(image_size=300), "coco/bbox_mAP"),
    "MMDetection_FasterRCNN": (DET, dict(image_size=[96], random_resize_lower=80,
                                         random_resize_upper=112), "coco/bbox_mAP"),
    "MMDetection_AugFPN": (DET, dict(image_size=[96]), "coco/bbox_mAP"),
    "detection/Clarifai_InceptionV2": (DET, dict(image_size=[96], random_resize_lower=80,
                                                 random_resize_upper=112,
                                                 use_focal_loss=False), "coco/bbox_mAP"),
    "detection/Clarifai_InceptionV4": (DET, dict(image_size=320, keep_aspect_ratio=False),
                                       "coco/bbox_mAP"),
    "Detection_MSC10": (DET, dict(image_size=[96], random_resize_lower=64,
                                  random_resize_upper=128), "coco/bbox_mAP"),
    "MMClassification_ResNet_50_RSB_A1": (CLS, dict(image_size=32, batch_size=2,
                                                    warmup_iters=1), "accuracy/top1"),
    "Clarifai_InceptionBatchNorm": (CLS, dict(image_size=32, batch_size=2, init_epochs=1,
                                              step_epochs=1), "multi-label/mAP"),
    "classification/Clarifai_InceptionV2": (CLS, dict(image_size=32, batch_size=2, logreg=0,
                                                      init_epochs=1, step_epochs=1,
                                                      num_items_per_epoch=4), "accuracy/top1"),
    "Clarifai_ResNext": (CLS, dict(image_size=32, batch_size=2, init_epochs=1, step_epochs=1),
                         "multi-label/mAP"),
    "Clarifai_InceptionTransferEmbedNorm": (CLS, dict(image_size=64, batch_size=2),
                                            "multi-label/mAP"),
    "MMSegmentation_SegFormer": (SEG, dict(image_size=64, batch_size=2, warmup_iters=1),
                                 "mIoU"),
}

#: CPU-sized pyramids and heads (overrides): the models stay the same kind, 64 channels wide
SMALL_HEADS = {
    "retinanet": {"model.neck.out_channels": 64, "model.bbox_head.in_channels": 64,
                  "model.bbox_head.feat_channels": 64, "model.bbox_head.stacked_convs": 2},
    "faster_rcnn": {"model.neck.out_channels": 64, "model.rpn_head.in_channels": 64,
                    "model.rpn_head.feat_channels": 64,
                    "model.roi_head.bbox_roi_extractor.out_channels": 64,
                    # mmcv's CPU RoIAlign with adaptive sampling (0) is slow
                    "model.roi_head.bbox_roi_extractor.roi_layer.sampling_ratio": 2,
                    "model.roi_head.bbox_head.in_channels": 64,
                    "model.roi_head.bbox_head.fc_out_channels": 256,
                    "model.train_cfg.rpn_proposal.max_per_img": 200,
                    "model.train_cfg.rcnn.sampler.num": 128,
                    "model.test_cfg.rpn.max_per_img": 100},
}
HEADS_OF = {"MMDetection_FasterRCNN": "faster_rcnn", "MMDetection_AugFPN": "faster_rcnn",
            "detection/Clarifai_InceptionV2": "retinanet",
            "detection/Clarifai_InceptionV4": "retinanet", "Detection_MSC10": "retinanet"}

#: barebones templates: the user's config (text), its data task and the metric
BAREBONES: dict[str, tuple[str, str, str]] = {
    "MMDetection": (DET, """
        _base_ = 'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py'
        model = dict(backbone=dict(_delete_=True, type='ResNet', depth=18, num_stages=4,
                                   out_indices=(0, 1, 2, 3), norm_cfg=dict(type='BN'),
                                   style='pytorch', init_cfg=None),
                     neck=dict(out_channels=64),
                     bbox_head=dict(in_channels=64, feat_channels=64))
        pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
                    dict(type='Resize', scale=(128, 96), keep_ratio=True),
                    dict(type='PackDetInputs')]
        train_dataloader = dict(batch_size=1, dataset=dict(pipeline=pipeline))
        train_cfg = dict(max_epochs=1)
        """, "coco/bbox_mAP"),
    "MMClassification": (CLS, """
        _base_ = ['template:classification/Clarifai_InceptionV2?image_size=32&batch_size=2'
                  '&num_epochs=1&init_epochs=1&step_epochs=1&logreg=0']
        optim_wrapper = dict(optimizer=dict(_delete_=True, type='AdamW', lr=1e-3))
        """, "accuracy/top1"),
    "MMSegmentation": (SEG, """
        _base_ = ['template:MMSegmentation_SegFormer?image_size=64&batch_size=2&num_epochs=1'
                  '&warmup_iters=1']
        model = dict(decode_head=dict(channels=64))
        """, "mIoU"),
}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, str]:
    """The embedded synthetic shapes sets, tiny: 4 training images each."""
    from cplugins.shapes import (
        make_shapes_classification,
        make_shapes_detection,
        make_shapes_segmentation,
    )

    root = tmp_path_factory.mktemp("shapes")
    return {
        DET: make_shapes_detection(root / "det", num_train=4, num_val=2, image_size=(96, 128),
                                   seed=3)["data_root"],
        CLS: make_shapes_classification(root / "cls", num_train=4, num_val=3, image_size=32,
                                        seed=3)["data_root"],
        SEG: make_shapes_segmentation(root / "seg", num_train=4, num_val=2, image_size=(64, 64),
                                      seed=3)["data_root"],
    }


def shrink(cfg, task: str, work_dir: Path, name: str):
    """No worker processes; detection trains on 2 images (batch 1), validates on 1; no
    checkpoint files and no yapf formatting of the config mmengine logs (seconds each)."""
    from mmengine.config import Config

    for key in ("train_dataloader", "val_dataloader", "test_dataloader"):
        cfg[key].update(num_workers=0, persistent_workers=False)
    if task == DET:
        cfg.train_dataloader.batch_size = 1
        common.innermost_dataset(cfg.train_dataloader.dataset)["indices"] = 2
        cfg.val_dataloader.dataset.indices = 1
        test_cfg = cfg.model.test_cfg
        (test_cfg.rcnn if "rcnn" in test_cfg else test_cfg).score_thr = 0.0  # untrained scores
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint = None
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = name.replace("/", "_")
    return Config(cfg.to_dict(), filename=cfg.filename, format_python_code=False)


def _train(cfg) -> dict:
    from mmengine.runner import Runner

    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2, f"trained {runner.iter} iterations"
    return dict(runner.message_hub.log_scalars)


def test_every_template_model_builds_with_default_hyperparameters():
    """The default models (full widths, e.g. YOLOX-s, 256-channel pyramids) build."""
    from mmengine.registry import MODELS, DefaultScope

    import cplugins.all  # noqa: F401

    for name in TINY:
        cfg = render(name)
        with DefaultScope.overwrite_default_scope(cfg.default_scope):
            model = MODELS.build(cfg.model)
        assert sum(p.numel() for p in model.parameters()) > 1_000_000, name


@pytest.mark.parametrize("name", list(TINY))
def test_template_trains_two_iterations_and_validates(name, datasets, tmp_path, monkeypatch):
    import cplugins.all  # noqa: F401  (what tools/train.py does)

    monkeypatch.chdir(tmp_path)
    task, values, metric = TINY[name]
    cfg = render(name, dict(dict(num_epochs=1, batch_size=1), **values), data=datasets[task],
                 overrides=SMALL_HEADS.get(HEADS_OF.get(name), {}))
    scalars = _train(shrink(cfg, task, tmp_path / "work", name))
    assert "train/loss" in scalars
    assert f"val/{metric}" in scalars, sorted(scalars)


@pytest.mark.parametrize("name", list(BAREBONES))
def test_barebones_template_trains_the_users_config(name, datasets, tmp_path, monkeypatch):
    import cplugins.all  # noqa: F401

    monkeypatch.chdir(tmp_path)
    task, text, metric = BAREBONES[name]
    config = tmp_path / "my_config.py"
    config.write_text(textwrap.dedent(text))
    cfg = render(name, {"config": str(config)}, data=datasets[task])
    assert cfg.template["name"] == f"{task}/{name}"
    assert cfg.default_scope == {DET: "mmdet", CLS: "mmpretrain", SEG: "mmseg"}[task]
    cfg = shrink(cfg, task, tmp_path / "work", name)
    if name == "MMClassification":  # _delete_ replaced the template's SGD
        assert dict(cfg.optim_wrapper.optimizer) == {"type": "AdamW", "lr": 1e-3}
    scalars = _train(cfg)
    assert f"val/{metric}" in scalars, sorted(scalars)


def test_tools_train_template_generates_the_synthetic_set(tmp_path, monkeypatch):
    """``tools/train.py --template`` without --data: the synthetic set is generated and used;
    the run gets an experiment id that `cplugins runs` lists and ``continue_from_eid`` finds."""
    options = ["synthetic_data.num_train=4", "synthetic_data.num_val=3",
               "synthetic_data.image_size=32", "train_dataloader.num_workers=0",
               "val_dataloader.num_workers=0", "test_dataloader.num_workers=0"]
    result = run_python("", cwd=tmp_path, args=[
        str(REPO / "tools" / "train.py"), "--template", "Clarifai_InceptionBatchNorm",
        "--set", "image_size=32", "batch_size=2", "num_epochs=1", "init_epochs=1",
        "step_epochs=1", "--cfg-options", *options])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    manifest = tmp_path / "data/templates/shapes_classification/cplugins_dataset.json"
    assert json.loads(manifest.read_text())["params"]["num_train"] == 4
    work_dir = tmp_path / "work_dirs" / "Clarifai_InceptionBatchNorm"
    assert (work_dir / "epoch_1.pth").is_file(), output[-3000:]
    # the config copy and the experiment are named after the template, and the run has an id;
    # the log names that file instead of repeating the whole config
    assert "train_dataloader = dict(" in (work_dir / "Clarifai_InceptionBatchNorm.py").read_text()
    log = next(work_dir.glob("*/*.log")).read_text()
    assert "Config: template classification/Clarifai_InceptionBatchNorm, " in log
    assert "train_dataloader = dict(" not in log
    records = list(work_dir.glob("*/cplugins_experiment.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    checkpoint = str(work_dir.resolve() / "epoch_1.pth")
    assert record["last_checkpoint"] == checkpoint
    assert record["template"] == "classification/Clarifai_InceptionBatchNorm"
    assert record["hyperparameters"]["image_size"] == 32
    assert f"experiment id {record['eid']}" in output
    assert "train [" in output and "multi-label/mAP" in output

    listed = run_python("", cwd=tmp_path, args=["-m", "cplugins.cli", "runs"])
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[1].split() == [
        record["eid"], "classification/Clarifai_InceptionBatchNorm", *record["started"].split(),
        checkpoint]
    monkeypatch.chdir(tmp_path)  # the runs are looked for in ./work_dirs
    monkeypatch.delenv("CPLUGINS_RUNS_ROOT", raising=False)
    assert render("Clarifai_InceptionBatchNorm",
                  {"continue_from_eid": record["eid"]}).load_from == checkpoint
    with pytest.raises(TemplateValidationError) as info:
        render("Clarifai_InceptionBatchNorm", {"continue_from_eid": "20200101_000000-0000"})
    assert info.value.errors == [
        "continue_from_eid='20200101_000000-0000': no run with this id under work_dirs/ "
        f"(latest: {record['eid']}); allowed: '' (none) or the id of a recorded run "
        "(`cplugins runs`; CPLUGINS_RUNS_ROOT sets the folder)"]

    result = run_python("", cwd=tmp_path, args=[
        str(REPO / "tools" / "train.py"), "--template", "Clarifai_InceptionBatchNorm",
        "--set", "batch_size=0", "image_size=33"])
    assert result.returncode == 1
    assert "2 invalid hyperparameters" in result.stderr
    assert "image_size=33: off the step grid (nearest: 32 or 48)" in result.stderr


def test_stock_mmengine_runner_runs_a_rendered_file(datasets, tmp_path):
    """A rendered file needs no cplugins tooling: custom_imports register the plugin modules
    (cplugins_inception), cplugins' own (OHEMLoss, MinSamplesDataset) and the fail-fast check."""
    options = {f"{k}_dataloader.{o}": v for k in ("train", "val", "test")
               for o, v in (("num_workers", 0), ("persistent_workers", False))}
    options.update({"train_dataloader.dataset.dataset.indices": 2,
                    "val_dataloader.dataset.indices": 1,
                    # untrained scores: boxes to evaluate (the NaN guard, which rendered files
                    # carry, refuses a validation without any result)
                    "model.test_cfg.score_thr": 0.0})
    values = dict(image_size=[96], batch_size=2, num_epochs=1, use_focal_loss=False,
                  min_samples_per_epoch=4, random_resize_lower=80, random_resize_upper=112)
    good = write_config(render("detection/Clarifai_InceptionV2", values, data=datasets[DET],
                               overrides={**options, **SMALL_HEADS["retinanet"]}),
                        tmp_path / "retina.py")
    options = {k: v for k, v in options.items() if "indices" not in k and "model" not in k}
    offline = write_config(render("Clarifai_ResNext", {"image_size": 32},
                                  data=datasets[CLS], overrides=options), tmp_path / "rx.py")
    # a barebones config inheriting that template with custom_imports of its own: mmengine's
    # merge replaces the template's list, the rendered file must still import its plugin
    mine = tmp_path / "mine.py"
    mine.write_text("_base_ = 'template:detection/Clarifai_InceptionV2?image_size=96'\n"
                    "custom_imports = dict(imports=['cplugins_augfpn'])\n")
    bare = write_config(render("MMDetection", {"config": str(mine)}), tmp_path / "bare.py")
    code = textwrap.dedent(f"""
        import time
        from mmengine.config import Config
        from mmengine.registry import MODELS, DefaultScope
        from mmengine.runner import Runner
        cfg = Config.fromfile({str(bare)!r})  # first: nothing imported cplugins_inception yet
        with DefaultScope.overwrite_default_scope(cfg.default_scope):
            backbone = MODELS.build(cfg.model.backbone)
        print("BUILT", type(backbone).__name__, cfg.custom_imports["imports"])

        cfg = Config.fromfile({str(good)!r})
        cfg.work_dir = {str(tmp_path / 'work')!r}
        runner = Runner.from_cfg(cfg)
        runner.train()
        print("TRAINED", runner.iter, type(runner.model.bbox_head.loss_cls).__name__,
              type(runner.train_dataloader.dataset).__name__, len(runner.train_dataloader.dataset))

        cfg = Config.fromfile({str(offline)!r})
        cfg.work_dir = {str(tmp_path / 'work2')!r}
        cfg.load_from = "http://127.0.0.1:9/resnext.pth"
        start = time.monotonic()
        try:
            Runner.from_cfg(cfg).train()
        except Exception as exc:
            print("FAILED", type(exc).__name__, round(time.monotonic() - start), exc)
    """)
    result = run_python(code, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "TRAINED 2 OHEMLoss MinSamplesDataset 4" in result.stdout, output[-3000:]
    assert ("BUILT BNInception ['cplugins.templates.runtime', 'cplugins_augfpn', "
            "'cplugins_inception'" in result.stdout)
    failed = next(line for line in result.stdout.splitlines() if line.startswith("FAILED"))
    kind, seconds = failed.split()[1:3]
    assert kind == "WeightsUnavailableError" and int(seconds) < 30, failed
    assert "pass the local file instead: `--set load_from=/path/resnext.pth`" in failed
