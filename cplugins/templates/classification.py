"""Render functions of the built-in classification templates."""
from __future__ import annotations

import copy
from typing import Any

from cplugins.templates import common
from cplugins.templates.rendering import RenderContext
from cplugins.training.weights import URLS, resolve_source


def _topk(num_classes: int) -> tuple[int, ...]:
    return (1, 5) if num_classes >= 5 else (1,)


def _test_pipeline(size: int, resize_ratio: float, **resize: Any) -> list[dict]:
    return [dict(type="LoadImageFromFile"),
            dict(type="ResizeEdge", scale=round(size * resize_ratio), edge="short", **resize),
            dict(type="CenterCrop", crop_size=size),
            dict(type="PackInputs")]


def _apply_data(ctx: RenderContext, train: list[dict], test: list[dict]) -> None:
    cfg, data = ctx.cfg, ctx.data
    cfg.train_dataloader.dataset = data.dataset("train", train)
    cfg.train_dataloader.batch_size = ctx.hp["batch_size"]
    val = dict(cfg.val_dataloader, dataset=data.dataset("val", test))
    cfg.val_dataloader = val
    cfg.test_dataloader = copy.deepcopy(val)
    if "data_preprocessor" in cfg and "num_classes" in cfg.data_preprocessor:
        cfg.data_preprocessor.num_classes = data.num_classes


def _head(ctx: RenderContext, in_channels: int, logreg: bool) -> None:
    """Softmax ``LinearClsHead`` + accuracy, or sigmoid multi-label head + mAP / F1."""
    cfg, n = ctx.cfg, ctx.data.num_classes
    if logreg:
        cfg.model.head = dict(type="MultiLabelLinearClsHead", num_classes=n,
                              in_channels=in_channels,
                              loss=dict(type="CrossEntropyLoss", use_sigmoid=True,
                                        loss_weight=1.0))
        evaluator: Any = [dict(type="AveragePrecision"),
                          dict(type="MultiLabelMetric", average="macro")]
    else:
        cfg.model.head = dict(type="LinearClsHead", num_classes=n, in_channels=in_channels,
                              loss=dict(type="CrossEntropyLoss", loss_weight=1.0),
                              topk=_topk(n))
        evaluator = dict(type="Accuracy", topk=_topk(n))
    cfg.val_evaluator = evaluator
    cfg.test_evaluator = copy.deepcopy(evaluator)


def render_rsb_a1(ctx: RenderContext) -> None:
    """MMClassification_ResNet_50_RSB_A1: ResNet-50 with the 'ResNet strikes back' A1 recipe."""
    cfg, hp = ctx.cfg, ctx.hp
    s = hp["image_size"]
    train = copy.deepcopy(common.innermost_dataset(cfg.train_dataloader.dataset)["pipeline"])
    common.find_transform(train, "RandomResizedCrop")["scale"] = s
    common.find_transform(train, "RandomFlip").update(prob=hp["flip_probability"],
                                                      direction=hp["flip_direction"])
    test = _test_pipeline(s, 236 / 224, backend="pillow", interpolation="bicubic")
    _apply_data(ctx, train, test)
    n = ctx.data.num_classes
    cfg.model.head.num_classes = n
    cfg.model.head.topk = _topk(n)
    cfg.val_evaluator = dict(type="Accuracy", topk=_topk(n))
    cfg.test_evaluator = dict(type="Accuracy", topk=_topk(n))
    optimizer = cfg.optim_wrapper.optimizer
    optimizer.lr = common.per_item_lr(hp)
    optimizer.weight_decay = hp["weight_decay"]
    schedulers = []
    if hp["warmup_iters"]:
        schedulers.append(dict(type="LinearLR", start_factor=hp["warmup_ratio"], by_epoch=False,
                               begin=0, end=hp["warmup_iters"]))
    epochs = hp["num_epochs"]
    schedulers.append(dict(type="CosineAnnealingLR", by_epoch=True, begin=0, end=epochs,
                           T_max=epochs, eta_min=hp["batch_size"] * hp["per_item_min_lrate"],
                           convert_to_iter_based=True))
    cfg.param_scheduler = schedulers
    cfg.train_cfg = dict(by_epoch=True, max_epochs=epochs, val_interval=1)
    common.backbone_pretrained(cfg, hp["pretrained_weights"],
                               {"ImageNet-1k": URLS["resnet50_rsb_a1_in1k"]}, prefix="backbone")


def _clarifai(ctx: RenderContext, in_channels: int) -> None:
    """Clarifai_InceptionBatchNorm / _InceptionV2 / _ResNext: step decay, logreg heads."""
    cfg, hp = ctx.cfg, ctx.hp
    s = hp["image_size"]
    train = [dict(type="LoadImageFromFile"),
             dict(type="RandomResizedCrop", scale=s),
             dict(type="RandomFlip", prob=0.5, direction="horizontal"),
             dict(type="PackInputs")]
    _apply_data(ctx, train, _test_pipeline(s, 256 / 224))
    _head(ctx, in_channels, bool(hp["logreg"]))
    common.set_lr(cfg, common.per_item_lr(hp))
    milestones = common.step_milestones(hp["init_epochs"], hp["step_epochs"], hp["num_epochs"])
    schedulers = ([dict(type="MultiStepLR", milestones=milestones, gamma=0.1)]
                  if milestones else [dict(type="ConstantLR", factor=1.0)])
    common.epochs_or_items(cfg, hp["num_epochs"], hp["batch_size"], hp["num_items_per_epoch"],
                           schedulers)


def render_inception_bn(ctx: RenderContext) -> None:
    """Clarifai_InceptionBatchNorm: BN-Inception in its original Caffe layout (conv biases)."""
    ctx.cfg.model.backbone.conv_bias = True
    _clarifai(ctx, 1024)


def render_inception_v2(ctx: RenderContext) -> None:
    """Clarifai_InceptionV2: BN-Inception without the redundant conv biases before BN."""
    ctx.cfg.model.backbone.conv_bias = "auto"
    _clarifai(ctx, 1024)


def render_resnext(ctx: RenderContext) -> None:
    """Clarifai_ResNext: ResNeXt-50 (32x4d)."""
    _clarifai(ctx, 2048)


def render_embednorm(ctx: RenderContext) -> None:
    """Clarifai_InceptionTransferEmbedNorm: InceptionV4 + normalized-embedding cosine head."""
    cfg, hp = ctx.cfg, ctx.hp
    s, n = hp["image_size"], ctx.data.num_classes
    train = [dict(type="LoadImageFromFile"),
             dict(type="RandomResizedCrop", scale=s),
             dict(type="RandomFlip", prob=0.5, direction="horizontal"),
             dict(type="PackInputs")]
    _apply_data(ctx, train, _test_pipeline(s, 256 / 224))
    logreg = bool(hp["logreg"])
    cfg.model.head.update(num_classes=n, logreg=logreg,
                          average_flips=hp["average_horizontal_flips"],
                          topk=_topk(n))
    evaluator: Any = ([dict(type="AveragePrecision"),
                       dict(type="MultiLabelMetric", average="macro")] if logreg
                      else dict(type="Accuracy", topk=_topk(n)))
    cfg.val_evaluator = evaluator
    cfg.test_evaluator = copy.deepcopy(evaluator)
    common.set_lr(cfg, hp["lrate"])
    cfg.optim_wrapper.paramwise_cfg = dict(
        custom_keys={"backbone": dict(lr_mult=hp["base_gradient_multiplier"])})
    epochs = hp["num_epochs"]
    schedulers = [dict(type="CosineAnnealingLR", begin=0, end=epochs, T_max=epochs,
                       eta_min=0.0)]
    common.epochs_or_items(cfg, epochs, hp["batch_size"], hp["num_items_per_epoch"],
                           schedulers)
    if hp["num_items_per_epoch"] <= 0:
        cfg.param_scheduler[0]["convert_to_iter_based"] = True
    cfg.load_from = resolve_source(hp["load_from"], {})
