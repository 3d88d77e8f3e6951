"""Render functions of the built-in detection templates (called with a ``RenderContext``)."""
from __future__ import annotations

import copy
from typing import Any

from cplugins.templates import common
from cplugins.templates.rendering import RenderContext
from cplugins.training.weights import URLS

_LOAD = [dict(type="LoadImageFromFile", backend_args=None),
         dict(type="LoadAnnotations", with_bbox=True)]
_PACK_TEST = dict(type="PackDetInputs",
                  meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor"))
#: YOLOX model sizes: (deepen_factor, widen_factor), as mmdet's yolox_{tiny,s,m,l,x} configs
YOLOX_SIZES: dict[str, tuple[float, float]] = {
    "tiny": (0.33, 0.375), "s": (0.33, 0.5), "m": (0.67, 0.75), "l": (1.0, 1.0),
    "x": (1.33, 1.25)}
#: multi-scale training of Detection_MSC10: this many discrete shorter sides
MSC_SCALES = 10
#: YOLOX batch sizes are multiples of this (its largest feature stride)
YOLOX_DIVISOR = 32


# --- sizes ---------------------------------------------------------------------------------
def _sizes(hp: dict[str, Any]) -> tuple[tuple[int, int], bool, int]:
    """(mmdet ``scale`` as (w, h) or (long, short), keep_ratio, shorter side)."""
    size = hp["image_size"]
    size = [size] if isinstance(size, int) else list(size)
    keep = hp.get("keep_aspect_ratio", False)
    if keep:
        short = size[0]
        return (round(short * hp.get("max_aspect_ratio", 1.0)), short), True, short
    h, w = (size[0], size[0]) if len(size) == 1 else size
    return (w, h), False, min(h, w)


def train_resize(hp: dict[str, Any]) -> list[dict]:
    """The resize of training: fixed (random_resize empty), or random between the bounds: a
    shorter side (one value each) or an exact (height, width) (two values each)."""
    scale, keep, short = _sizes(hp)
    lower, upper = hp.get("random_resize_lower") or [], hp.get("random_resize_upper") or []
    if not (lower and upper):
        return [dict(type="Resize", scale=scale, keep_ratio=keep)]
    if len(lower) == 2:
        (h1, w1), (h2, w2) = lower, upper
        return [dict(type="RandomResize", scale=[(w1, h1), (w2, h2)], keep_ratio=False)]
    ratio = (lower[0] / short, upper[0] / short)
    return [dict(type="RandomResize", scale=scale, ratio_range=ratio, keep_ratio=keep)]


def test_resize(hp: dict[str, Any]) -> dict:
    scale, keep, _ = _sizes(hp)
    return dict(type="Resize", scale=scale, keep_ratio=keep)


def msc_resize(hp: dict[str, Any]) -> list[dict]:
    """:data:`MSC_SCALES` discrete sizes from random_resize_lower to _upper (shorter sides, or
    (height, width) pairs); both empty: one scale, ``image_size``."""
    scale, keep, short = _sizes(hp)
    lower, upper = hp["random_resize_lower"], hp["random_resize_upper"]
    if not (lower and upper):
        return [dict(type="Resize", scale=scale, keep_ratio=keep)]

    def steps(a: int, b: int) -> list[int]:
        return [round(a + i * (b - a) / (MSC_SCALES - 1)) for i in range(MSC_SCALES)]

    if len(lower) == 2:  # exact (w, h) sizes
        scales = sorted(set(zip(steps(lower[1], upper[1]), steps(lower[0], upper[0]))))
        return [dict(type="RandomChoiceResize", scales=scales, keep_ratio=False)]
    sides = sorted(set(steps(lower[0], upper[0])))
    if keep:  # (longer side limit, shorter side) as mmdet's keep-ratio scales
        scales = [(round(s * hp["max_aspect_ratio"]), s) for s in sides]
    else:  # the exact (w, h) scaled so that its shorter side is s
        scales = [(round(scale[0] * s / short), round(scale[1] * s / short)) for s in sides]
    return [dict(type="RandomChoiceResize", scales=scales, keep_ratio=keep)]


def yolox_batch_sizes(hp: dict[str, Any]) -> tuple[int, int]:
    """The (smallest, largest) batch side of YOLOX's multi-scale training.

    random_resize_lower / _upper when given; both empty: around ``image_size`` as mmdet's recipe
    (480..800 at 640: 0.75x to 1.25x, multiples of 32).
    """
    lower, upper = hp["random_resize_lower"], hp["random_resize_upper"]
    if lower and upper:
        return lower[0], upper[0]
    size = hp["image_size"]
    return (max(YOLOX_DIVISOR, round(size * 0.75 / YOLOX_DIVISOR) * YOLOX_DIVISOR),
            round(size * 1.25 / YOLOX_DIVISOR) * YOLOX_DIVISOR)


# --- shared edits ----------------------------------------------------------------------------
def _apply_common(ctx: RenderContext, train_pipeline: list[dict], test_pipeline: list[dict],
                  aliases: dict[str, str]) -> None:
    """Data, classes, batch size, learning rate, epochs, starting weights, frozen stages."""
    cfg, hp, data = ctx.cfg, ctx.hp, ctx.data
    common.set_num_classes(cfg.model, data.num_classes)
    train = common.min_samples(data.dataset("train", train_pipeline),
                               hp.get("min_samples_per_epoch", 0))
    cfg.train_dataloader.dataset = train
    cfg.train_dataloader.batch_size = hp["batch_size"]
    val = dict(cfg.val_dataloader, dataset=data.dataset("val", test_pipeline))
    cfg.val_dataloader = val
    cfg.test_dataloader = copy.deepcopy(val)
    evaluator = dict(type="CocoMetric", ann_file=data.coco_ann_file("val"), metric="bbox",
                     format_only=False, backend_args=None)
    cfg.val_evaluator = evaluator
    cfg.test_evaluator = dict(evaluator)
    common.set_lr(cfg, common.per_item_lr(hp))
    base_epochs = cfg.train_cfg.get("max_epochs", hp["num_epochs"])
    common.scale_epoch_schedulers(cfg, base_epochs, hp["num_epochs"])
    common.epoch_loop(cfg, hp["num_epochs"])
    common.start_from(cfg, hp, aliases)
    if "frozen_stages" in hp:
        cfg.model.backbone.frozen_stages = hp["frozen_stages"]
    if "base_model" in hp:
        _resnet_backbone(cfg, hp)


def _resnet_backbone(cfg, hp: dict[str, Any]) -> None:
    """base_model (ResNet depth) and pretrain_base_data (its starting weights)."""
    depth = {"resnet50": 50, "resnet101": 101}[hp["base_model"]]
    cfg.model.backbone.depth = depth
    caffe = cfg.model.backbone.get("style") == "caffe"  # YOLOF: caffe weights, caffe inputs
    weights = {"ImageNet-1k": URLS[f"resnet{depth}_caffe_in1k" if caffe
                                   else f"resnet{depth}_in1k_torchvision"]}
    common.backbone_pretrained(cfg, hp["pretrain_base_data"], weights)


def _anchor_ratios(anchor_generator: dict, hp: dict[str, Any]) -> None:
    if "anchor_ratios" in hp:
        anchor_generator["ratios"] = list(hp["anchor_ratios"])


def _classification_loss(head: dict, hp: dict[str, Any]) -> None:
    """use_focal_loss: sigmoid focal loss, or OHEM (hardest negatives, 3 per positive)."""
    if hp.get("use_focal_loss", True):
        head["loss_cls"] = dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25,
                                loss_weight=1.0)
    else:
        # use_sigmoid=True: mmdet heads read it from the config to give num_classes outputs
        # (without it: num_classes + 1 softmax outputs, and OHEMLoss would take the
        # background column for a class)
        head["loss_cls"] = dict(type="OHEMLoss", use_sigmoid=True, neg_pos_ratio=3,
                                loss_weight=1.0)


def _standard_pipelines(hp: dict[str, Any], resize: list[dict]) -> tuple[list, list]:
    train = [*copy.deepcopy(_LOAD), *resize, dict(type="RandomFlip", prob=0.5),
             dict(type="PackDetInputs")]
    test = [dict(type="LoadImageFromFile", backend_args=None), test_resize(hp),
            dict(type="LoadAnnotations", with_bbox=True), dict(_PACK_TEST)]
    return train, test


# --- templates ---------------------------------------------------------------------------------
def render_faster_rcnn(ctx: RenderContext) -> None:
    """MMDetection_FasterRCNN and MMDetection_AugFPN (same hyperparameters)."""
    hp, cfg = ctx.hp, ctx.cfg
    train, test = _standard_pipelines(hp, train_resize(hp))
    _apply_common(ctx, train, test, {"coco": URLS["faster_rcnn_coco"]})
    cfg.model.roi_head.bbox_head.reg_class_agnostic = not hp["use_perclass_regression"]
    _anchor_ratios(cfg.model.rpn_head.anchor_generator, hp)


def render_retinanet(ctx: RenderContext) -> None:
    """RetinaNet-style templates: Clarifai_InceptionV2 / _InceptionV4 (detection)."""
    hp, cfg = ctx.hp, ctx.cfg
    train, test = _standard_pipelines(hp, train_resize(hp))
    _apply_common(ctx, train, test, {})
    _classification_loss(cfg.model.bbox_head, hp)
    _anchor_ratios(cfg.model.bbox_head.anchor_generator, hp)


def render_msc10(ctx: RenderContext) -> None:
    """Detection_MSC10: RetinaNet R50-FPN trained at 10 discrete scales."""
    hp, cfg = ctx.hp, ctx.cfg
    train, test = _standard_pipelines(hp, msc_resize(hp))
    _apply_common(ctx, train, test, {"coco": URLS["retinanet_ms_coco"]})
    _classification_loss(cfg.model.bbox_head, hp)
    _anchor_ratios(cfg.model.bbox_head.anchor_generator, hp)


def render_yolof(ctx: RenderContext) -> None:
    hp, cfg = ctx.hp, ctx.cfg
    base = common.innermost_dataset(cfg.train_dataloader.dataset)["pipeline"]
    train = common.replace_transform(base, "Resize", *train_resize(hp))
    _, test = _standard_pipelines(hp, [])
    _apply_common(ctx, train, test, {"coco": URLS["yolof_coco"]})
    _anchor_ratios(cfg.model.bbox_head.anchor_generator, hp)


def render_ssd(ctx: RenderContext) -> None:
    hp = ctx.hp
    size = hp["image_size"]
    if size != 300:
        ctx.cfg = ctx.load(f"mmdet::ssd/ssd{size}_coco.py")
    cfg = ctx.cfg
    base = common.innermost_dataset(cfg.train_dataloader.dataset)["pipeline"]
    resize = dict(type="Resize", scale=(size, size), keep_ratio=False)
    train = common.replace_transform(base, "Resize", resize)
    test = [dict(type="LoadImageFromFile", backend_args=None), dict(resize),
            dict(type="LoadAnnotations", with_bbox=True), dict(_PACK_TEST)]
    _apply_common(ctx, train, test, {"coco": URLS[f"ssd{size}_coco"]})


def render_yolox(ctx: RenderContext) -> None:
    hp, cfg = ctx.hp, ctx.cfg
    deepen, widen = YOLOX_SIZES[hp["model_size"]]
    model = cfg.model
    model.backbone.update(deepen_factor=deepen, widen_factor=widen)
    channels = [int(c * widen) for c in (256, 512, 1024)]
    model.neck.update(in_channels=channels, out_channels=channels[0])
    model.bbox_head.update(in_channels=channels[0], feat_channels=channels[0])
    model.data_preprocessor.batch_augments = [
        dict(type="BatchSyncRandomResize", random_size_range=yolox_batch_sizes(hp),
             size_divisor=YOLOX_DIVISOR, interval=10)]

    s = hp["image_size"]
    scale = (s, s)
    pad = dict(type="Pad", pad_to_square=True, pad_val=dict(img=(114.0, 114.0, 114.0)))
    tiny = hp["model_size"] == "tiny"  # mmdet's yolox_tiny: milder affine, no MixUp
    mix_pipeline = [
        dict(type="Mosaic", img_scale=scale, pad_val=114.0),
        dict(type="RandomAffine", scaling_ratio_range=(0.5, 1.5) if tiny else (0.1, 2),
             border=(-s // 2, -s // 2)),
        *([] if tiny else [dict(type="MixUp", img_scale=scale, ratio_range=(0.8, 1.6),
                                pad_val=114.0)]),
        dict(type="YOLOXHSVRandomAug"),
        dict(type="RandomFlip", prob=0.5),
        dict(type="Resize", scale=scale, keep_ratio=True),
        dict(pad),
        dict(type="FilterAnnotations", min_gt_bbox_wh=(1, 1), keep_empty=False),
        dict(type="PackDetInputs"),
    ]
    test = [dict(type="LoadImageFromFile", backend_args=None),
            dict(type="Resize", scale=scale, keep_ratio=True), dict(pad),
            dict(type="LoadAnnotations", with_bbox=True), dict(_PACK_TEST)]
    url = URLS.get(f"yolox_{hp['model_size']}_coco")
    _apply_common(ctx, copy.deepcopy(_LOAD), test, {"coco": url} if url else {})
    # Mosaic / MixUp need the multi-image wrapper outside (YOLOXModeSwitchHook talks to it)
    cfg.train_dataloader.dataset = dict(type="MultiImageMixDataset",
                                        dataset=cfg.train_dataloader.dataset,
                                        pipeline=mix_pipeline)
    base_epochs = 300
    for hook in cfg.custom_hooks:
        if hook["type"] == "YOLOXModeSwitchHook":
            hook["num_last_epochs"] = round(hook["num_last_epochs"] * hp["num_epochs"]
                                            / base_epochs)
