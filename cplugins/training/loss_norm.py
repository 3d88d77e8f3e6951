"""Normalise mmdet's anchor-head losses by the number of positives of *all* processes.

RetinaNet's, RPN's and SSD's heads (``AnchorHead.loss_by_feat``) divide each process's
summed loss ``s_r`` by that process's own ``avg_factor`` ``a_r`` (its number of positive
anchors). DDP then averages the gradients of ``s_r / a_r`` over the ranks: not the gradient
of ``sum(s) / sum(a)`` that one process on the whole batch computes, whenever the ranks'
images hold different numbers of objects. :func:`normalise_across_ranks` wraps the head's
``loss_by_feat_single`` so that ``avg_factor`` becomes its mean over the ranks (one
all-reduce of a scalar per call); the rank average of ``s_r / mean(a)`` is then
``sum(s) / sum(a)``.

Applied only to heads whose loss code was checked to call ``loss_by_feat_single`` the same
number of times on every rank whatever the images hold (a collective that one rank skips
would hang the others): ``AnchorHead.loss_by_feat`` (RetinaHead, RPNHead, plain
AnchorHead: once per feature level, even without positives) and ``SSDHead.loss_by_feat``
(once per image; every rank's batches have the same size). Heads that already average over
ranks (``reduce_mean``: FCOS, ATSS, GFL, YOLOX, YOLOF, TOOD, VFNet, RTMDet...) are left as
they are; so are RoI heads (their box loss is skipped when an image has no positives).
"""
from __future__ import annotations

import functools
import inspect
import logging

import torch
import torch.distributed as dist
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from torch import nn

#: (class defining ``loss_by_feat``, class defining ``loss_by_feat_single``) pairs checked
#: to call ``loss_by_feat_single(..., avg_factor=...)`` a data-independent number of times
VERIFIED = {("AnchorHead", "AnchorHead"), ("RPNHead", "AnchorHead"), ("SSDHead", "SSDHead")}
WRAPPED = "_cplugins_global_avg_factor"


def _defining_class(cls: type, method: str) -> type | None:
    return next((base for base in cls.__mro__ if method in vars(base)), None)


def _is_mmdet(cls: type | None) -> bool:
    return cls is not None and cls.__module__.startswith("mmdet.")


def classify_head(head: nn.Module) -> str:
    """``'normalise'``, ``'already global'`` (its loss uses ``reduce_mean``) or
    ``'unverified'`` for an mmdet dense head."""
    by_feat = _defining_class(type(head), "loss_by_feat")
    single = _defining_class(type(head), "loss_by_feat_single")
    if by_feat is not None:
        try:
            if "reduce_mean" in inspect.getsource(by_feat.loss_by_feat):
                return "already global"
        except (OSError, TypeError):
            pass
    if (_is_mmdet(by_feat) and _is_mmdet(single)
            and (by_feat.__name__, single.__name__) in VERIFIED):
        return "normalise"
    return "unverified"


def mean_over_ranks(value, device: torch.device) -> float:
    """The mean of the number ``value`` over every rank (one all-reduce)."""
    total = torch.tensor(float(value), dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return float(total) / dist.get_world_size()


def _wrap(head: nn.Module) -> None:
    original = head.loss_by_feat_single  # bound method

    @functools.wraps(original)
    def loss_by_feat_single(*args, avg_factor, **kwargs):
        device = args[0].device if args and torch.is_tensor(args[0]) else torch.device("cpu")
        return original(*args, avg_factor=mean_over_ranks(avg_factor, device), **kwargs)

    head.loss_by_feat_single = loss_by_feat_single
    setattr(head, WRAPPED, True)


def normalise_across_ranks(model: nn.Module) -> dict[str, list[str]]:
    """Wrap the verified heads of ``model`` (see the module docstring).

    Returns ``{'normalise': [...], 'already global': [...], 'unverified': [...]}``: the
    qualified names of the mmdet dense heads in each group.
    """
    from mmdet.models.dense_heads.base_dense_head import BaseDenseHead

    groups: dict[str, list[str]] = {"normalise": [], "already global": [], "unverified": []}
    for name, module in model.named_modules():
        if not isinstance(module, BaseDenseHead):
            continue
        kind = classify_head(module)
        groups[kind].append(f"{name or 'model'} ({type(module).__name__})")
        if kind == "normalise" and not getattr(module, WRAPPED, False):
            _wrap(module)
    return groups


class GlobalLossNormHook(Hook):
    """Apply :func:`normalise_across_ranks` to the model before training when more than one
    process trains (``tools/train.py`` adds it to multi-process runs unless
    ``--no-global-loss-norm``); logs which heads it normalises and which it leaves."""

    priority = "VERY_HIGH"

    def before_run(self, runner) -> None:
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return
        try:
            import mmdet.models  # noqa: F401
        except ImportError:
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        groups = normalise_across_ranks(model)
        if groups["normalise"]:
            print_log("GlobalLossNormHook: avg_factor averaged over ranks in "
                      + ", ".join(groups["normalise"]), logger="current")
        if groups["already global"]:
            print_log("GlobalLossNormHook: already averaged over ranks (reduce_mean): "
                      + ", ".join(groups["already global"]), logger="current")
        if groups["unverified"]:
            print_log("GlobalLossNormHook: left per-rank (not verified safe to synchronise): "
                      + ", ".join(groups["unverified"]), logger="current",
                      level=logging.WARNING)
