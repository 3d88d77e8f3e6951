"""Differentiable soft-F1 loss for mmpretrain classification heads and mmdet heads.

Definition (N samples, C classes; ``P`` probabilities, ``Y`` targets, ``W`` weights, all (N, C))::

    s     = avg_factor, or the number of samples with a nonzero weight (at least 1)
    TP_c  = sum_i W_ic * P_ic * Y_ic        / s
    FP_c  = sum_i W_ic * P_ic * (1 - Y_ic)  / s
    FN_c  = sum_i W_ic * (1 - P_ic) * Y_ic  / s
    F1_c  = 2 TP_c / (2 TP_c + FP_c + FN_c + eps)
    l_c   = class_weight_c * (1 - F1_c)                      # per-class loss, shape (C,)

F1 is a set-level metric, so the counts are taken over the whole batch and the reduction
acts on the **class** axis: ``'mean'`` returns ``mean_c l_c`` (the macro soft-F1 loss),
``'sum'`` returns ``sum_c l_c``, ``'none'`` returns the vector ``l`` (C,); ``average='none'``
always returns ``l``. ``avg_factor`` never divides the loss (F1 is already normalized; the
mmpretrain/mmdet heads pass a sample count there): it is the number of samples the soft
counts are averaged over. F1 is invariant to a common scale of the counts, so it only sets
how large ``eps`` is relative to them; the default equals what those heads pass.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

REDUCTIONS = ("none", "mean", "sum")
AVERAGES = ("macro", "none")
ACTIVATIONS = ("sigmoid", "softmax", "none")

AvgFactor = Optional[Union[float, int, Tensor]]


def _check_choice(name: str, value: object, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(
            f"{name} must be one of {', '.join(repr(a) for a in allowed)}; got {value!r}")


def _targets_and_mask(target: Tensor, num_classes: int, num_samples: int,
                      ignore_index: int | None, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Dense targets ``Y`` (N, C) and a validity mask (N, 1) or (N, C) from ``target``."""
    if target.dim() == 1:
        if target.shape[0] != num_samples:
            raise ValueError(f"target has {target.shape[0]} labels for {num_samples} "
                             "predictions")
        if target.is_floating_point() or target.dtype == torch.bool:
            raise ValueError("class-index targets (N,) must be an integer tensor, got "
                             f"{target.dtype}; give float targets as (N, C)")
        valid = (target != ignore_index) if ignore_index is not None \
            else torch.ones_like(target, dtype=torch.bool)
        # labels in [0, C) are classes; C means "no class" (mmdet's background when the score
        # vector has no background channel): an all-negative row.
        bad = valid & ((target < 0) | (target > num_classes))
        if bool(bad.any()):
            raise ValueError(
                f"class-index targets must lie in [0, {num_classes}] (num_classes={num_classes}; "
                f"{num_classes} means no class) or equal ignore_index={ignore_index}; got "
                f"{target[bad][:5].tolist()}")
        index = torch.where(valid, target, torch.zeros_like(target)).long()
        dense = F.one_hot(index, num_classes + 1)[:, :num_classes].to(dtype)
        return dense * valid[:, None].to(dtype), valid[:, None]
    if target.dim() == 2:
        if tuple(target.shape) != (num_samples, num_classes):
            raise ValueError(f"one-hot/multi-label targets must have the shape of pred "
                             f"{(num_samples, num_classes)}, got {tuple(target.shape)}")
        valid = (target != ignore_index) if ignore_index is not None \
            else torch.ones_like(target, dtype=torch.bool)
        dense = torch.where(valid, target.to(dtype), torch.zeros((), dtype=dtype,
                                                                 device=target.device))
        return dense, valid
    raise ValueError(f"target must be class indices (N,) or one-hot/multi-label (N, C); "
                     f"got shape {tuple(target.shape)}")


def soft_f1_loss(pred: Tensor,
                 target: Tensor,
                 weight: Tensor | None = None,
                 *,
                 activation: str = "softmax",
                 average: str = "macro",
                 reduction: str = "mean",
                 avg_factor: AvgFactor = None,
                 ignore_index: int | None = -100,
                 class_weight: Tensor | Sequence[float] | None = None,
                 eps: float = 1e-6) -> Tensor:
    """Soft-F1 loss (see the module docstring for the exact definition).

    Args:
        pred: (N, C) logits, or probabilities when ``activation='none'``.
        target: (N,) integer class indices in ``[0, C]`` (``C``: no class), or (N, C)
            one-hot / multi-label / soft targets in [0, 1].
        weight: (N,) sample weights or (N, C) element weights (e.g. mmdet ``label_weights``).
        activation: ``'sigmoid'``, ``'softmax'`` (over C) or ``'none'``.
        average: ``'macro'`` (reduce over classes with ``reduction``) or ``'none'`` ((C,)).
        reduction: ``'mean'`` / ``'sum'`` over classes, or ``'none'`` ((C,)).
        avg_factor: number of samples the soft counts are averaged over (scale of ``eps``).
        ignore_index: targets equal to it get weight 0 (a whole sample for (N,) targets, one
            element for (N, C) targets); ``None`` disables it.
        class_weight: (C,) weights of the per-class losses.
        eps: added to the F1 denominator.

    Returns:
        A scalar, or the (C,) per-class losses when ``reduction`` or ``average`` is ``'none'``.
    """
    _check_choice("activation", activation, ACTIVATIONS)
    _check_choice("average", average, AVERAGES)
    _check_choice("reduction", reduction, REDUCTIONS)
    if pred.dim() != 2:
        raise ValueError(f"pred must be (N, C) scores, got shape {tuple(pred.shape)}")
    num_samples, num_classes = pred.shape
    if activation == "sigmoid":
        prob = pred.sigmoid()
    elif activation == "softmax":
        prob = pred.softmax(dim=1)
    else:
        prob = pred
    dense, valid = _targets_and_mask(target, num_classes, num_samples, ignore_index, prob.dtype)
    mask = valid.to(prob.dtype)
    if weight is not None:
        weight = weight.to(prob.dtype)
        if weight.dim() == 1 and weight.shape[0] == num_samples:
            weight = weight[:, None]
        elif tuple(weight.shape) != (num_samples, num_classes):
            raise ValueError(f"weight must be (N,) or (N, C) = {(num_samples, num_classes)}, "
                             f"got {tuple(weight.shape)}")
        mask = mask * weight
    if avg_factor is None:
        scale = (mask > 0).any(dim=1).sum().clamp(min=1).to(prob.dtype)
    else:
        if not isinstance(avg_factor, Tensor) and not avg_factor > 0:
            raise ValueError(f"avg_factor must be > 0, got {avg_factor!r}")
        scale = avg_factor
    tp = (mask * prob * dense).sum(dim=0) / scale
    fp = (mask * prob * (1 - dense)).sum(dim=0) / scale
    fn = (mask * (1 - prob) * dense).sum(dim=0) / scale
    loss = 1 - 2 * tp / (2 * tp + fp + fn + eps)
    if class_weight is not None:
        class_weight = torch.as_tensor(class_weight, dtype=loss.dtype, device=loss.device)
        if tuple(class_weight.shape) != (num_classes,):
            raise ValueError(f"class_weight must have one weight per class ({num_classes}), "
                             f"got shape {tuple(class_weight.shape)}")
        loss = loss * class_weight
    if average == "none" or reduction == "none":
        return loss
    return loss.mean() if reduction == "mean" else loss.sum()


class SoftF1Loss(nn.Module):
    """Differentiable soft-F1 loss, ``1 - F1`` per class from soft TP/FP/FN.

    Drop-in for ``CrossEntropyLoss`` as ``loss`` of an mmpretrain ``ClsHead`` or
    ``loss_cls`` of an mmdet head: ``forward(pred, target, weight, avg_factor,
    reduction_override)``. With mmdet RoI heads the score vector has ``num_classes + 1``
    channels and label ``num_classes`` (background) is its last class; with a score vector of
    ``num_classes`` channels (sigmoid dense heads) that label is an all-negative row.

    Args:
        activation: how ``pred`` becomes probabilities: ``'softmax'`` (single-label),
            ``'sigmoid'`` (multi-label / one-vs-rest) or ``'none'`` (already probabilities).
            Defaults to ``'sigmoid'`` if ``use_sigmoid`` else ``'softmax'``.
        average: ``'macro'`` (default): classes reduced by ``reduction``; ``'none'``: the
            per-class loss vector (C,) is returned whatever the reduction.
        reduction: ``'mean'`` (mean over classes), ``'sum'`` (sum over classes) or ``'none'``.
        loss_weight: multiplies the loss; must be >= 0.
        ignore_index: targets equal to it are excluded; ``None`` disables it.
        class_weight: optional per-class weights (C,) of the per-class losses.
        eps: added to the F1 denominator; must be > 0.
        use_sigmoid: mmdet spelling of ``activation='sigmoid'``; mmdet dense heads read
            ``loss_cls.use_sigmoid`` from the config to choose ``num_classes`` score channels.
    """

    def __init__(self,
                 activation: str | None = None,
                 average: str = "macro",
                 reduction: str = "mean",
                 loss_weight: float = 1.0,
                 ignore_index: int | None = -100,
                 class_weight: Sequence[float] | None = None,
                 eps: float = 1e-6,
                 use_sigmoid: bool | None = None) -> None:
        super().__init__()
        if activation is None:
            activation = "sigmoid" if use_sigmoid else "softmax"
        _check_choice("activation", activation, ACTIVATIONS)
        if use_sigmoid is not None and bool(use_sigmoid) != (activation == "sigmoid"):
            raise ValueError(f"use_sigmoid={use_sigmoid!r} contradicts activation="
                             f"{activation!r}; give one of them")
        _check_choice("average", average, AVERAGES)
        _check_choice("reduction", reduction, REDUCTIONS)
        if not (isinstance(loss_weight, (int, float)) and math.isfinite(loss_weight)
                and loss_weight >= 0):
            raise ValueError(f"loss_weight must be a finite number >= 0, got {loss_weight!r}")
        if not (isinstance(eps, (int, float)) and eps > 0):
            raise ValueError(f"eps must be > 0, got {eps!r}")
        if class_weight is not None:
            class_weight = [float(w) for w in class_weight]
            if any(w < 0 for w in class_weight):
                raise ValueError(f"class_weight must be >= 0, got {class_weight}")
        self.activation = activation
        self.use_sigmoid = activation == "sigmoid"
        self.average = average
        self.reduction = reduction
        self.loss_weight = float(loss_weight)
        self.ignore_index = ignore_index
        self.class_weight = class_weight
        self.eps = float(eps)

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Tensor | None = None,
                avg_factor: AvgFactor = None,
                reduction_override: str | None = None) -> Tensor:
        """Loss of ``pred`` (N, C) against ``target`` (N,) or (N, C).

        Returns:
            A scalar, or the (C,) per-class losses for ``'none'`` reduction / average.
        """
        if reduction_override is not None:
            _check_choice("reduction_override", reduction_override, REDUCTIONS)
        reduction = reduction_override or self.reduction
        return self.loss_weight * soft_f1_loss(
            pred, target, weight,
            activation=self.activation,
            average=self.average,
            reduction=reduction,
            avg_factor=avg_factor,
            ignore_index=self.ignore_index,
            class_weight=self.class_weight,
            eps=self.eps)

    def extra_repr(self) -> str:
        return (f"activation={self.activation!r}, average={self.average!r}, "
                f"reduction={self.reduction!r}, loss_weight={self.loss_weight}")
