"""Render function of the built-in segmentation template (SegFormer)."""
from __future__ import annotations

import copy

from cplugins.templates import common
from cplugins.templates.rendering import RenderContext
from cplugins.training.weights import URLS


def render_segformer(ctx: RenderContext) -> None:
    """MMSegmentation_SegFormer: MiT-b0 SegFormer, epoch-based, poly decay after warm-up."""
    cfg, hp, data = ctx.cfg, ctx.hp, ctx.data
    s = hp["image_size"]
    crop = (s, s)
    train = [dict(type="LoadImageFromFile"),
             dict(type="LoadAnnotations", reduce_zero_label=False),
             dict(type="RandomResize", scale=(4 * s, s), ratio_range=(0.5, 2.0), keep_ratio=True),
             dict(type="RandomCrop", crop_size=crop, cat_max_ratio=0.75),
             dict(type="RandomFlip", prob=0.5),
             dict(type="PhotoMetricDistortion"),
             dict(type="PackSegInputs")]
    test = [dict(type="LoadImageFromFile"),
            dict(type="Resize", scale=(4 * s, s), keep_ratio=True),
            dict(type="LoadAnnotations", reduce_zero_label=False),
            dict(type="PackSegInputs")]
    cfg.train_dataloader.dataset = data.dataset("train", train)
    cfg.train_dataloader.batch_size = hp["batch_size"]
    cfg.train_dataloader.sampler = dict(type="DefaultSampler", shuffle=True)
    val = dict(cfg.val_dataloader, dataset=data.dataset("val", test))
    cfg.val_dataloader = val
    cfg.test_dataloader = copy.deepcopy(val)
    cfg.model.data_preprocessor.size = crop
    cfg.data_preprocessor.size = crop
    common.set_num_classes(cfg.model, data.num_classes)

    optimizer = cfg.optim_wrapper.optimizer
    optimizer.lr = common.per_item_lr(hp)
    optimizer.weight_decay = hp["weight_decay"]
    epochs = hp["num_epochs"]
    schedulers = []
    if hp["warmup_iters"]:
        schedulers.append(dict(type="LinearLR", start_factor=1e-6, by_epoch=False, begin=0,
                               end=hp["warmup_iters"]))
    schedulers.append(dict(type="PolyLR", eta_min=0.0, power=1.0, begin=0, end=epochs,
                           by_epoch=True, convert_to_iter_based=True))
    cfg.param_scheduler = schedulers
    interval = max(1, epochs // 10)
    cfg.train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=epochs, val_interval=interval)
    cfg.default_hooks.checkpoint = dict(type="CheckpointHook", by_epoch=True, interval=interval)
    cfg.default_hooks.logger = dict(type="LoggerHook", interval=50, log_metric_by_epoch=True)
    cfg.log_processor = dict(by_epoch=True)
    common.backbone_pretrained(cfg, hp["pretrained_weights"],
                               {"ImageNet-1k": URLS["mit_b0_in1k"]})
