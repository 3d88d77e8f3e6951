"""Input generators for ``cplugins check`` examples of mmseg modules (``Example.inputs``).

``{"generator": "cplugins.check.inputs:seg_features", ...}``: the generator contract of
:mod:`cplugins.inputs` (``fn(params, batch_size, input_size, device, rng) -> Inputs``).
mmpretrain heads use the built-in ``cls_features`` (``ClsHead.loss(feats, data_samples)``).
"""
from __future__ import annotations

import torch


def seg_features(params: dict, batch_size: int | None, input_size: tuple[int, int] | None,
                 device: torch.device, rng: torch.Generator):
    """Backbone levels for an mmseg decode head, and what its ``loss`` takes.

    Params: ``channels`` and ``strides`` of the levels, ``image_size`` (H, W), ``batch``,
    ``num_classes``. ``forward(inputs)`` gets the list of levels ``(N, C_i, H / s_i, W / s_i)``
    (with gradient); ``loss(inputs, batch_data_samples, train_cfg)`` also gets one
    ``SegDataSample`` per image whose ``gt_sem_seg`` holds labels ``(1, H, W)`` below
    ``num_classes``, and ``train_cfg={}`` (``BaseDecodeHead.loss``'s signature).
    """
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    from cplugins.inputs import Inputs, feature_pyramid

    levels = feature_pyramid(params, batch_size, input_size, device, rng)
    (feats,) = levels.args
    h, w = levels.image_size
    num_classes = int(params.get("num_classes", 4))
    samples = []
    for _ in range(levels.batch):
        sample = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                             pad_shape=(h, w)))
        labels = torch.randint(0, num_classes, (1, h, w), generator=rng).to(device)
        sample.gt_sem_seg = PixelData(data=labels)
        samples.append(sample)
    return Inputs((feats,), train_args=(feats, samples, {}),
                  shapes=f"{levels.shapes}, labels {h}x{w} < {num_classes}",
                  batch=levels.batch, image_size=(h, w))
