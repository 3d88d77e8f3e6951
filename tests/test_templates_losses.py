"""Every template with a ``use_focal_loss`` choice, built with each loss, on one fixed batch:
the classification loss sees as many positives as the assigner found, and its first value is
what the head's initialisation predicts (RetinaNet's prior: every class probability 0.01).

A softmax-built head (``num_classes + 1`` outputs, what an OHEM entry without
``use_sigmoid=True`` gives) makes every background anchor a "positive" and the loss hundreds
of times too large; both checks catch it.
"""
from __future__ import annotations

import math

import pytest
import torch

from cplugins.templates.catalog import load_catalog
from cplugins.templates.rendering import render

#: CPU-sized pyramid and head: the same kinds of modules, 64 channels wide
SMALL = {"model.neck.out_channels": 64, "model.bbox_head.in_channels": 64,
         "model.bbox_head.feat_channels": 64, "model.bbox_head.stacked_convs": 2}
WITH_LOSS_CHOICE = [e.template.qualified_name for e in load_catalog().entries
                    if "use_focal_loss" in {hp.name for hp in e.template.hyperparameters}]
PRIOR = 0.01  # RetinaHead's bias_prob: sigmoid(initial logit) of every class
NUM_CLASSES = 3  # the synthetic shapes set's classes
SIDE = 192


def _batch(channels: int):
    """Pyramid features of a SIDE x SIDE image (strides 8 to 128) and its 3 boxes.

    The backbone is not run (seconds each on a CPU, and not what is tested): the head sees
    features shaped like the neck's."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    torch.manual_seed(0)
    feats = tuple(torch.randn(1, channels, math.ceil(SIDE / s), math.ceil(SIDE / s))
                  for s in (8, 16, 32, 64, 128))
    shape = (SIDE, SIDE)
    sample = DetDataSample(metainfo=dict(img_shape=shape, pad_shape=shape,
                                         batch_input_shape=shape, scale_factor=(1.0, 1.0)))
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[16.0, 20.0, 80.0, 90.0], [100.0, 96.0, 170.0, 180.0],
                             [40.0, 120.0, 72.0, 150.0]]),
        labels=torch.tensor([0, 2, 1]))
    return feats, [sample]


def _expected_loss(use_focal: bool, positives: int, negatives: list[int]) -> float:
    """The first loss of a freshly initialised head: every logit is ``logit(PRIOR)``.

    ``negatives``: the background anchors of each pyramid level (mmdet calls the loss once a
    level, each time with ``avg_factor`` = all positives).
    """
    c, p = NUM_CLASSES, PRIOR
    ce_true, ce_false = -math.log(p), -math.log(1 - p)
    if use_focal:  # alpha 0.25, gamma 2
        per_positive = 0.25 * (1 - p) ** 2 * ce_true + (c - 1) * 0.75 * p ** 2 * ce_false
        per_negative = c * 0.75 * p ** 2 * ce_false
        total = positives * per_positive + sum(negatives) * per_negative
    else:  # OHEM: each level keeps its 3 * positives hardest negatives
        per_positive = ce_true + (c - 1) * ce_false
        total = positives * per_positive + sum(min(3 * positives, n) for n in negatives) * (
            c * ce_false)
    return total / positives


@pytest.mark.parametrize("use_focal", [True, False], ids=["focal", "ohem"])
@pytest.mark.parametrize("name", WITH_LOSS_CHOICE)
def test_loss_choice_counts_the_positives_and_has_the_initial_scale(name, use_focal):
    from mmengine.registry import MODELS, DefaultScope

    import cplugins.all  # noqa: F401  (registers the backbones and OHEMLoss)

    cfg = render(name, {"use_focal_loss": use_focal}, overrides=SMALL)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
        head = model.bbox_head
        head.init_weights()  # RetinaNet's prior: classification bias logit(0.01)
        assert head.cls_out_channels == NUM_CLASSES, "a background output: softmax head"
        calls = []
        head.loss_cls.register_forward_hook(
            lambda module, args, kwargs, out: calls.append((args, kwargs, out)),
            with_kwargs=True)
        feats, samples = _batch(cfg.model.neck.out_channels)
        with torch.no_grad():
            losses = head.loss(feats, samples)
    assert len(calls) == 5  # one call per pyramid level
    counted, negatives, factors = 0, [], set()
    for (pred, target, weight), kwargs, _ in calls:
        valid = weight > 0
        counted += int((valid & (target < pred.size(1))).sum())
        negatives.append(int((valid & (target == NUM_CLASSES)).sum()))
        factors.add(float(kwargs["avg_factor"]))
    assert len(factors) == 1
    assigned = factors.pop()
    assert assigned >= 3 and counted == assigned, (counted, assigned)
    loss = float(sum(losses["loss_cls"]))
    expected = _expected_loss(use_focal, counted, negatives)
    assert math.isclose(loss, expected, rel_tol=0.03), (loss, expected)
