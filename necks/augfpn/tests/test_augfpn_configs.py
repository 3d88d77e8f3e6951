"""Every AugFPN config of the repository (configs/augfpn: the shapes experiments, the ablation
and the demo) builds, trains 2 iterations and predicts; the model zoo's configs (package data
of cplugins-augfpn) are tested in test_zoo_configs.py.

The shapes configs are also run once end to end through ``tools/train.py`` (Runner, 2
iterations + CocoMetric validation). About a minute on a quiet 2-core CPU (slow).
"""
from __future__ import annotations

import copy
import json
import textwrap
from pathlib import Path

import cplugins_augfpn  # noqa: F401  (imports cplugins first, registers the modules)
import pytest
import torch
from helpers import run_python

REPO = Path(__file__).resolve().parents[3]
CONFIGS = REPO / "configs" / "augfpn"
pytestmark = pytest.mark.slow

#: config -> (detector type, extractor type, Consistent Supervision)
EXPECTED = {
    "faster-rcnn_r18_fpn_300i_shapes.py": ("FasterRCNN", "SingleRoIExtractor", False),
    "faster-rcnn_r18_augfpn-rfa_300i_shapes.py": ("FasterRCNN", "SingleRoIExtractor", False),
    "faster-rcnn_r18_augfpn-rfa-cs_300i_shapes.py":
        ("CSTwoStageDetector", "SingleRoIExtractor", True),
    "faster-rcnn_r18_augfpn_300i_shapes.py": ("CSTwoStageDetector", "SoftRoIExtractor", True),
    # the ablation on the multi-scale set (tools/augfpn_ablation.py) and the demo
    "faster-rcnn_r18-w32_fpn_150i_shapes-multiscale128.py":
        ("FasterRCNN", "SingleRoIExtractor", False),
    "faster-rcnn_r18-w32_augfpn-rfa_150i_shapes-multiscale128.py":
        ("FasterRCNN", "SingleRoIExtractor", False),
    "faster-rcnn_r18-w32_augfpn-rfa-cs_150i_shapes-multiscale128.py":
        ("CSTwoStageDetector", "SingleRoIExtractor", True),
    "faster-rcnn_r18-w32_augfpn_150i_shapes-multiscale128.py":
        ("CSTwoStageDetector", "SoftRoIExtractor", True),
    "fcos_r18-w32_augfpn_600i_shapes-easy128.py": ("FCOS", None, False),
}


def cpu_model_cfg(cfg) -> dict:
    """The config's model, cheap to run here: no pretrained download, CPU-friendly RoIAlign
    (``sampling_ratio=2``) and fewer proposals / sampled RoIs (architecture unchanged)."""
    model = copy.deepcopy(cfg.model)
    model.backbone.init_cfg = None
    if "roi_head" in model:
        extractor = model.roi_head.bbox_roi_extractor
        if extractor.roi_layer.get("sampling_ratio", 0) == 0:
            extractor.roi_layer.sampling_ratio = 2
        model.train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=64)
        model.train_cfg.rcnn.sampler.num = 32
        model.test_cfg.rpn.update(nms_pre=200, max_per_img=32)
    else:
        model.test_cfg.update(nms_pre=200, max_per_img=20)
    return model


@pytest.mark.parametrize("name", list(EXPECTED))
def test_config_builds_trains_two_iterations_and_predicts(name, build_detector, shapes_items):
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import build_optim_wrapper

    cfg = Config.fromfile(str(CONFIGS / name))
    detector, extractor, cs = EXPECTED[name]
    model = build_detector(cpu_model_cfg(cfg))
    assert type(model).__name__ == detector
    if extractor is not None:
        assert type(model.roi_head.bbox_roi_extractor).__name__ == extractor
    assert type(model.neck).__name__ == ("FPN" if "_fpn_" in name else "AugFPN")

    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    model.train()
    for _ in range(2):
        log = model.train_step(pseudo_collate(copy.deepcopy(shapes_items["train"][:2])), wrapper)
        assert torch.isfinite(log["loss"])
    assert any(k.startswith("aux_loss") for k in log) == cs

    model.eval()
    with torch.no_grad():
        results = model.test_step(pseudo_collate(copy.deepcopy(shapes_items["val"])))
    assert len(results) == len(shapes_items["val"])
    for result in results:
        pred = result.pred_instances
        assert pred.bboxes.dim() == 2 and pred.bboxes.size(1) == 4
        assert len(pred.scores) == len(pred.labels) == len(pred.bboxes)


def test_full_augfpn_config_through_tools_train(tmp_path):
    """tools/train.py (mmengine Runner): 2 iterations, aux losses logged, CocoMetric runs."""
    data_root = str(tmp_path / "shapes") + "/"
    config = tmp_path / "tiny_full_augfpn.py"
    config.write_text(textwrap.dedent(f"""
        _base_ = {str(CONFIGS / 'faster-rcnn_r18_augfpn_300i_shapes.py')!r}
        data_root = {data_root!r}
        synthetic_data = dict(task='detection', data_root=data_root, num_train=4, num_val=2,
                              image_size=(96, 128), seed=2)
        train_cfg = dict(max_iters=2, val_interval=2)
        train_dataloader = dict(dataset=dict(data_root=data_root))
        val_dataloader = dict(dataset=dict(data_root=data_root))
        test_dataloader = dict(dataset=dict(data_root=data_root))
        val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
        test_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
        default_hooks = dict(checkpoint=dict(interval=2), logger=dict(interval=1))
        model = dict(
            train_cfg=dict(rpn_proposal=dict(nms_pre=200, max_per_img=64),
                           rcnn=dict(sampler=dict(num=32))),
            test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=32)))
    """))
    work_dir = tmp_path / "work"
    result = run_python("", args=[str(REPO / "tools" / "train.py"), str(config), "--work-dir",
                                  str(work_dir), "--no-progress"],
                        env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert (work_dir / "iter_2.pth").is_file()
    scalars = next(work_dir.glob("*/vis_data/scalars.json"))
    records = [json.loads(line) for line in scalars.read_text().splitlines()]
    # Consistent Supervision logs one term per lateral (the authors' per-level losses)
    assert any({"aux_loss_cls_level0", "aux_loss_bbox_level3"} <= set(r) for r in records)
    assert any("coco/bbox_mAP" in r for r in records)
