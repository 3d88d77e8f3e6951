"""Fixtures of the cplugins-augfpn detector tests: tiny shapes data and tiny detector configs.

The detectors are mmdet's Faster R-CNN / RetinaNet base models shrunk to a ResNet-18 with 16
base channels and a 32-channel pyramid, on 96x128 synthetic shapes images (CPU: a training step
takes well under a second).
"""
from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch

import cplugins  # noqa: F401  (before mmdet: arms the compat fixes)

BACKBONE_CHANNELS = [16, 32, 64, 128]
CHANNELS = 32
NUM_CLASSES = 3
#: mmcv's CPU RoIAlign with adaptive sampling (0) is slow; the demo uses 2 as well
ROI_LAYER = dict(type="RoIAlign", output_size=7, sampling_ratio=2)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread in every test module here: small tensors run as fast, and on a
    shared 2-core machine two threads were several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _base_model(name: str) -> dict:
    from mmengine.config import Config

    cfg = Config.fromstring(f"_base_ = 'mmdet::_base_/models/{name}.py'", ".py")
    return cfg.model.to_dict()


def tiny_faster_rcnn(
    detector: str = "CSTwoStageDetector",
    neck: str = "AugFPN",
    roi_head: str = "CSRoIHead",
    extractor: str = "SingleRoIExtractor",
    **roi_head_kwargs,
) -> dict:
    """mmdet's Faster R-CNN base model with small channels; ``roi_head_kwargs`` go to the head."""
    model = _base_model("faster-rcnn_r50_fpn")
    model["type"] = detector
    model["backbone"].update(depth=18, base_channels=16, init_cfg=None, frozen_stages=-1,
                             norm_eval=False)
    model["neck"] = dict(type=neck, in_channels=BACKBONE_CHANNELS, out_channels=CHANNELS,
                         num_outs=5)
    model["rpn_head"].update(in_channels=CHANNELS, feat_channels=CHANNELS,
                             anchor_generator=dict(type="AnchorGenerator", scales=[4],
                                                   ratios=[0.5, 1.0, 2.0],
                                                   strides=[4, 8, 16, 32, 64]))
    head = model["roi_head"]
    head["type"] = roi_head
    head["bbox_roi_extractor"].update(type=extractor, out_channels=CHANNELS,
                                      roi_layer=dict(ROI_LAYER))
    head["bbox_head"].update(in_channels=CHANNELS, fc_out_channels=64, num_classes=NUM_CLASSES)
    head.update(roi_head_kwargs)
    model["train_cfg"]["rpn_proposal"].update(nms_pre=300, max_per_img=100)
    model["train_cfg"]["rcnn"]["sampler"]["num"] = 64
    model["test_cfg"]["rpn"].update(nms_pre=300, max_per_img=100)
    return model


def tiny_retinanet(detector: str = "CSSingleStageDetector", neck: str = "AugFPN",
                   **detector_kwargs) -> dict:
    """mmdet's RetinaNet base model with small channels."""
    model = _base_model("retinanet_r50_fpn")
    model["type"] = detector
    model["backbone"].update(depth=18, base_channels=16, init_cfg=None, frozen_stages=-1,
                             norm_eval=False)
    model["neck"] = dict(type=neck, in_channels=BACKBONE_CHANNELS, out_channels=CHANNELS,
                         start_level=1, add_extra_convs="on_input", num_outs=5)
    model["bbox_head"].update(in_channels=CHANNELS, feat_channels=CHANNELS, stacked_convs=2,
                              num_classes=NUM_CLASSES)
    model["test_cfg"].update(nms_pre=200, max_per_img=50)
    model.update(detector_kwargs)
    return model


@pytest.fixture(scope="session")
def shapes_data(tmp_path_factory) -> dict:
    """A tiny shapes detection set (4 train / 2 val images of 96x128), generated once."""
    from cplugins.shapes import make_shapes_detection

    root = tmp_path_factory.mktemp("augfpn_shapes")
    return make_shapes_detection(root, num_train=4, num_val=2, image_size=(96, 128), seed=3,
                                 min_objects=2, max_objects=4)


@pytest.fixture(scope="session")
def shapes_items(shapes_data) -> dict[str, list]:
    """Packed (pipeline output) train and val items of :func:`shapes_data`."""
    import cplugins_augfpn  # noqa: F401  (registers the modules)
    from mmdet.datasets import CocoDataset
    from mmengine.registry import init_default_scope

    init_default_scope("mmdet")
    pipeline = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_bbox=True),
                dict(type="Resize", scale=(128, 96), keep_ratio=True),  # sets scale_factor
                dict(type="PackDetInputs",
                     meta_keys=("img_id", "img_path", "ori_shape", "img_shape",
                                "scale_factor", "flip", "flip_direction"))]
    items = {}
    for split in ("train", "val"):
        dataset = CocoDataset(**shapes_data[split], pipeline=pipeline,
                              test_mode=split == "val")
        items[split] = [dataset[i] for i in range(len(dataset))]
    return items


@pytest.fixture()
def build_detector() -> Callable[[dict], torch.nn.Module]:
    """Build a model config with mmdet's registry, seeded (same weights for the same config)."""
    from mmdet.registry import MODELS
    from mmengine.config import ConfigDict
    from mmengine.registry import init_default_scope

    def build(cfg: dict, seed: int = 0) -> torch.nn.Module:
        init_default_scope("mmdet")
        torch.manual_seed(seed)
        model = MODELS.build(ConfigDict(copy.deepcopy(cfg)))
        model.init_weights()
        return model

    return build


@pytest.fixture()
def det_batch(shapes_items) -> Callable:
    """``det_batch(model, split, n)``: the model's preprocessed batch of ``n`` shapes images."""
    from mmengine.dataset import pseudo_collate

    def make(model: torch.nn.Module, split: str = "train", n: int = 2) -> dict:
        batch = pseudo_collate(copy.deepcopy(shapes_items[split][:n]))
        return model.data_preprocessor(batch, training=split == "train")

    return make


@pytest.fixture()
def faster_rcnn_cfg() -> Callable[..., dict]:
    """:func:`tiny_faster_rcnn`."""
    return tiny_faster_rcnn


@pytest.fixture()
def retinanet_cfg() -> Callable[..., dict]:
    """:func:`tiny_retinanet`."""
    return tiny_retinanet
