"""``OHEMLoss``: sigmoid cross-entropy with online hard negative mining, for dense heads.

mmdet's ``OHEMSampler`` works only for RoI heads. Templates whose ``use_focal_loss=false`` asks
for OHEM on a single-stage (RetinaNet-style) head use this loss instead of ``FocalLoss``: every
positive anchor counts, and of the negatives only the ``neg_pos_ratio * num_positives`` with the
highest loss (SSD's hard negative mining, with sigmoid outputs). mmdet calls the loss once per
pyramid level with ``avg_factor`` = the positives of the whole batch, so each level keeps up to
``neg_pos_ratio`` times that many of its hardest negatives; the sum is divided by
``avg_factor``.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

_REDUCTIONS = ("none", "mean", "sum")


class OHEMLoss(nn.Module):
    """Sigmoid cross-entropy over positives and the hardest negatives.

    Args:
        neg_pos_ratio: negatives kept per positive (> 0).
        use_sigmoid: must be True, and must be written in the config's ``loss_cls`` entry:
            mmdet heads read it from the config (not from this module) to build
            ``num_classes`` outputs; without it they build ``num_classes + 1`` and the
            background column would be taken for a class. Rendered templates refuse an
            ``OHEMLoss`` entry without it.
        reduction: ``mean`` (sum / ``avg_factor``), ``sum`` or ``none`` (per anchor, 0 for
            anchors not kept).
        loss_weight: scale of the loss (>= 0).
    """

    def __init__(self, neg_pos_ratio: float = 3.0, use_sigmoid: bool = True,
                 reduction: str = "mean", loss_weight: float = 1.0) -> None:
        super().__init__()
        if not neg_pos_ratio > 0:
            raise ValueError(f"neg_pos_ratio must be > 0, got {neg_pos_ratio!r}")
        if use_sigmoid is not True:
            raise ValueError(f"use_sigmoid must be True (sigmoid outputs), got {use_sigmoid!r}")
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction={reduction!r}; allowed: {', '.join(_REDUCTIONS)}")
        if not loss_weight >= 0:
            raise ValueError(f"loss_weight must be >= 0, got {loss_weight!r}")
        self.neg_pos_ratio = float(neg_pos_ratio)
        self.use_sigmoid = True
        self.reduction = reduction
        self.loss_weight = float(loss_weight)

    def forward(self, pred: Tensor, target: Tensor, weight: Tensor | None = None,
                avg_factor: float | Tensor | None = None,
                reduction_override: str | None = None) -> Tensor:
        """``pred`` (N, C) logits, ``target`` (N,) labels in ``0..C`` (``C`` = background)."""
        reduction = reduction_override or self.reduction
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction={reduction!r}; allowed: {', '.join(_REDUCTIONS)}")
        num_classes = pred.size(1)
        onehot = F.one_hot(target.clamp(0, num_classes), num_classes + 1)[:, :num_classes]
        element = F.binary_cross_entropy_with_logits(pred, onehot.to(pred.dtype),
                                                     reduction="none")
        if weight is not None:
            element = element * (weight[:, None] if weight.dim() == 1 else weight)
            valid = (weight if weight.dim() == 1 else weight.sum(1)) > 0
        else:
            valid = torch.ones_like(target, dtype=torch.bool)
        per_anchor = element.sum(1)
        positive = valid & (target < num_classes)
        negative = valid & (target >= num_classes)
        num_pos = float(avg_factor) if avg_factor is not None else float(positive.sum())
        num_pos = max(num_pos, 1.0)
        k = min(int(self.neg_pos_ratio * num_pos), int(negative.sum()))
        keep = positive.clone()
        if k > 0:
            hardness = per_anchor.detach().masked_fill(~negative, float("-inf"))
            keep[hardness.topk(k).indices] = True
        kept = per_anchor * keep.to(per_anchor.dtype)
        if reduction == "none":
            loss = kept
        elif reduction == "sum":
            loss = kept.sum()
        else:
            loss = kept.sum() / num_pos
        return self.loss_weight * loss
