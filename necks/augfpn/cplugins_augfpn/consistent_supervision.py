"""Consistent Supervision (AugFPN, Guo et al., CVPR 2020) for mmdet 3.x detectors.

During training the pre-fusion laterals ``M_i`` of the pyramid (``lateral_conv`` outputs before
the top-down sums, from a neck with ``forward_with_laterals`` such as ``AugFPN``) get auxiliary
supervision with the same targets as the main head; the weighted auxiliary losses appear in the
loss dict as ``aux_<name>``. Prediction never computes the branch (``predict`` runs the stock
path, the neck's plain ``forward``).

* Two-stage (:class:`CSTwoStageDetector` + :class:`CSRoIHead`): the sampled RoIs of the main
  R-CNN head are pooled from every lateral (:class:`AllLevelRoIExtractor`) and go through an
  auxiliary box head (default: a copy of ``bbox_head``'s config) whose parameters are shared
  across levels, trained on the main head's sampling (same labels and box targets)::

      L_rcnn = L_cls,P + L_loc,P + aux_loss_weight * (L_cls,M + L_loc,M)

  (the paper's Eq. 1 with its lambda = ``aux_loss_weight``; the auxiliary terms are averaged
  over the RoIs of all levels).
* One-stage (:class:`CSSingleStageDetector`): the dense head is applied to the pre-fusion
  pyramid (laterals, plus the extra levels above them, which FPN never fuses) and its loss is
  added with weight ``aux_loss_weight``. Same feature sizes, so the same anchors / points and
  targets as the main loss. By default the main ``bbox_head`` itself is applied (parameters
  shared with the main head); ``aux_bbox_head`` builds a separate one.

``aux_loss_weight=0`` switches the branch off: the auxiliary modules are not built (no unused
parameters under DDP) and training computes exactly the stock detector.
"""
from __future__ import annotations

import copy
import math
from numbers import Real

import torch
import torch.nn.functional as F
from mmdet.models.detectors import SingleStageDetector, TwoStageDetector
from mmdet.models.roi_heads import StandardRoIHead
from mmdet.models.roi_heads.bbox_heads import ConvFCBBoxHead
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi
from torch import Tensor, nn

from .soft_roi_extractor import AllLevelRoIExtractor

__all__ = ["CSRoIHead", "CSSingleStageDetector", "CSTwoStageDetector"]

#: default Consistent Supervision weight: the public code's ``alpha`` of the auxiliary loss
DEFAULT_AUX_LOSS_WEIGHT = 0.25


def _check_weight(owner: str, value: object) -> float:
    if (isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value)
            or value < 0):
        raise ValueError(
            f"{owner}: aux_loss_weight must be a finite number >= 0 (0 disables Consistent "
            f"Supervision), got {value!r}"
        )
    return float(value)


def _check_neck(owner: str, neck: nn.Module | None) -> None:
    if neck is None or not callable(getattr(neck, "forward_with_laterals", None)):
        raise TypeError(
            f"{owner}: neck must provide forward_with_laterals(inputs) -> (outs, laterals) for "
            f"Consistent Supervision (e.g. neck=dict(type='AugFPN', ...)), "
            f"got {type(neck).__name__}"
        )


def _neck_laterals(neck: nn.Module) -> int | None:
    """Number of pre-fusion laterals of an FPN-like neck (None when it cannot be told)."""
    convs = getattr(neck, "lateral_convs", None)
    return len(convs) if convs is not None else None


def _aux_losses(losses: dict, weight: float) -> dict:
    """Prefix every key with ``aux_`` and weight the ``loss`` terms (tensors or lists)."""
    out = {}
    for key, value in losses.items():
        if "loss" in key:
            if isinstance(value, (list, tuple)):
                value = [v * weight for v in value]
            else:
                value = value * weight
        out[f"aux_{key}"] = value
    return out


class CSRoIHead(StandardRoIHead):
    """``StandardRoIHead`` with the two-stage Consistent Supervision branch (training only).

    Args:
        bbox_roi_extractor, bbox_head, mask_*, shared_head, train_cfg, test_cfg, init_cfg:
            as :class:`mmdet.models.roi_heads.StandardRoIHead` (``bbox_roi_extractor`` may be
            ``SoftRoIExtractor`` for Soft RoI Selection).
        aux_loss_weight: weight lambda of the auxiliary losses; 0 disables the branch (the
            auxiliary modules are then not built: the stock RoI head).
        aux_bbox_head: config of the auxiliary box head, shared across levels (default: a
            copy of ``bbox_head``); must have ``bbox_head``'s ``num_classes``.
        aux_roi_extractor: config of an :class:`AllLevelRoIExtractor` pooling each sampled RoI
            from every lateral (default: ``bbox_roi_extractor``'s ``roi_layer``,
            ``out_channels`` and ``featmap_strides``).

    :meth:`loss` takes the laterals as ``laterals=`` (:class:`CSTwoStageDetector` passes them).
    """

    def __init__(
        self,
        bbox_roi_extractor: dict,
        bbox_head: dict,
        aux_loss_weight: float = DEFAULT_AUX_LOSS_WEIGHT,
        aux_bbox_head: dict | None = None,
        aux_roi_extractor: dict | None = None,
        mask_roi_extractor: dict | None = None,
        mask_head: dict | None = None,
        shared_head: dict | None = None,
        train_cfg: dict | None = None,
        test_cfg: dict | None = None,
        init_cfg: dict | list[dict] | None = None,
    ) -> None:
        self.aux_loss_weight = _check_weight("CSRoIHead", aux_loss_weight)
        if bbox_roi_extractor is None or bbox_head is None:
            raise ValueError("CSRoIHead: bbox_roi_extractor and bbox_head are required")
        super().__init__(
            bbox_roi_extractor=bbox_roi_extractor, bbox_head=bbox_head,
            mask_roi_extractor=mask_roi_extractor, mask_head=mask_head,
            shared_head=shared_head, train_cfg=train_cfg, test_cfg=test_cfg, init_cfg=init_cfg,
        )
        self.aux_roi_extractor: AllLevelRoIExtractor | None = None
        self.aux_bbox_head: nn.Module | None = None
        if self.aux_loss_weight == 0:  # CS off: the stock RoI head, no unused parameters
            return
        if aux_roi_extractor is None:
            aux_roi_extractor = dict(
                type="AllLevelRoIExtractor",
                roi_layer=copy.deepcopy(bbox_roi_extractor["roi_layer"]),
                out_channels=bbox_roi_extractor["out_channels"],
                featmap_strides=list(bbox_roi_extractor["featmap_strides"]),
            )
        extractor = MODELS.build(aux_roi_extractor)
        if not isinstance(extractor, AllLevelRoIExtractor):
            raise TypeError(
                f"CSRoIHead: aux_roi_extractor must build an AllLevelRoIExtractor (every RoI "
                f"from every level), got type={type(extractor).__name__!r}"
            )
        self.aux_roi_extractor = extractor
        head = MODELS.build(copy.deepcopy(bbox_head) if aux_bbox_head is None else aux_bbox_head)
        if getattr(head, "num_classes", None) != self.bbox_head.num_classes:
            raise ValueError(
                f"CSRoIHead: aux_bbox_head.num_classes must equal bbox_head.num_classes="
                f"{self.bbox_head.num_classes} (same targets), got "
                f"{getattr(head, 'num_classes', None)!r}"
            )
        self.aux_bbox_head = head

    def loss(
        self,
        x: tuple[Tensor, ...],
        rpn_results_list: list,
        batch_data_samples: SampleList,
        laterals: list[Tensor] | None = None,
    ) -> dict:
        """StandardRoIHead's loss plus, when ``aux_loss_weight > 0``, :meth:`aux_loss`.

        Args:
            x: pyramid levels (N, C, H_l, W_l).
            rpn_results_list: proposals per image.
            batch_data_samples: ground truth per image.
            laterals: pre-fusion laterals (N, C, H_l, W_l), finest first; required when
                ``aux_loss_weight > 0``.
        """
        if self.aux_loss_weight > 0 and laterals is None:
            raise ValueError(
                "CSRoIHead.loss: laterals=None but aux_loss_weight="
                f"{self.aux_loss_weight}; use type='CSTwoStageDetector' (it passes the neck's "
                "pre-fusion laterals) or set aux_loss_weight=0"
            )
        assert len(rpn_results_list) == len(batch_data_samples)
        batch_gt_instances, batch_gt_instances_ignore, _ = unpack_gt_instances(
            batch_data_samples)

        # assign gts and sample proposals (as StandardRoIHead.loss)
        sampling_results = []
        for i in range(len(batch_data_samples)):
            rpn_results = rpn_results_list[i]
            rpn_results.priors = rpn_results.pop("bboxes")
            assign_result = self.bbox_assigner.assign(
                rpn_results, batch_gt_instances[i], batch_gt_instances_ignore[i])
            sampling_result = self.bbox_sampler.sample(
                assign_result, rpn_results, batch_gt_instances[i],
                feats=[lvl_feat[i][None] for lvl_feat in x])
            sampling_results.append(sampling_result)

        losses = dict()
        bbox_results = self.bbox_loss(x, sampling_results)
        losses.update(bbox_results["loss_bbox"])
        if self.aux_loss_weight > 0:
            losses.update(self.aux_loss(laterals, sampling_results))
        if self.with_mask:
            mask_results = self.mask_loss(x, sampling_results, bbox_results["bbox_feats"],
                                          batch_gt_instances)
            losses.update(mask_results["loss_mask"])
        return losses

    def aux_loss(self, laterals: list[Tensor], sampling_results: list) -> dict:
        """Weighted auxiliary losses of the sampled RoIs pooled from every lateral.

        Every RoI k is pooled from the L laterals -> (K*L, C, S, S) (RoI-major), classified and
        regressed by ``aux_bbox_head`` against the targets of RoI k (its
        ``get_targets`` on the main head's sampling results, repeated per level).

        Returns:
            ``aux_loss_cls``, ``aux_loss_bbox`` (times ``aux_loss_weight``), ``aux_acc``.
        """
        rois = bbox2roi([res.priors for res in sampling_results])  # (K, 5)
        cls_score, bbox_pred, levels = self.aux_forward(laterals, rois)
        targets = self.aux_bbox_head.get_targets(sampling_results, self.train_cfg, concat=True)
        targets = [t.repeat_interleave(levels, dim=0) for t in targets]
        losses = self.aux_bbox_head.loss(
            cls_score, bbox_pred, rois.repeat_interleave(levels, dim=0), *targets)
        return _aux_losses(losses, self.aux_loss_weight)

    def aux_forward(self, laterals: list[Tensor], rois: Tensor,
                    channels_last: bool = True) -> tuple[Tensor, Tensor, int]:
        """Auxiliary head outputs of ``rois`` (K, 5) pooled from every lateral.

        Returns ``(cls_score, bbox_pred, L)``, rows RoI-major (K * L). With ``channels_last``
        and a head that flattens first (mmdet's ``Shared2FCBBoxHead``, the default: FCs only,
        no convs or average pool) on the gather backend, the pooled (K, L, 7, 7, C) features
        feed the first FC as they are and its weight is permuted instead (C * 49 columns, a
        fraction of the K * L * 49 * C features): the same products without transposing the
        features forward and back.
        """
        extractor, head = self.aux_roi_extractor, self.aux_bbox_head
        feats = laterals[: extractor.num_inputs]  # the extractor checks them
        size = extractor.output_size
        if not (channels_last and extractor.uses_gather(feats)
                and _flattens_first(head, extractor.out_channels * size[0] * size[1])):
            pooled = extractor(feats, rois)  # (K, L, C, S, S)
            return (*head(pooled.flatten(0, 1)), pooled.size(1))
        pooled = extractor(feats, rois, channels_last=True)  # (K, L, S, S, C)
        k, levels, c = pooled.size(0), pooled.size(1), pooled.size(-1)
        first = head.shared_fcs[0]
        weight = first.weight.view(first.out_features, c, -1).transpose(1, 2).reshape(
            first.out_features, -1)  # columns (i, j, c) instead of (c, i, j)
        x = head.relu(F.linear(pooled.view(k * levels, -1), weight, first.bias))
        for fc in head.shared_fcs[1:]:
            x = head.relu(fc(x))
        cls_score = head.fc_cls(x) if head.with_cls else None
        bbox_pred = head.fc_reg(x) if head.with_reg else None
        return cls_score, bbox_pred, levels


def _flattens_first(head: nn.Module, features: int) -> bool:
    """Whether ``head`` is mmdet's ConvFCBBoxHead forward on FCs only: flatten, shared FCs
    (the first taking ``features`` inputs), then ``fc_cls`` / ``fc_reg``."""
    return (
        isinstance(head, ConvFCBBoxHead)
        and type(head).forward is ConvFCBBoxHead.forward
        and head.num_shared_convs == head.num_cls_convs == head.num_reg_convs == 0
        and head.num_cls_fcs == head.num_reg_fcs == 0
        and head.num_shared_fcs > 0 and not head.with_avg_pool
        and type(head.shared_fcs[0]) is nn.Linear
        and head.shared_fcs[0].in_features == features
    )


class CSTwoStageDetector(TwoStageDetector):
    """Two-stage detector (e.g. Faster R-CNN) trained with Consistent Supervision.

    Same arguments as :class:`mmdet.models.detectors.FasterRCNN`; ``neck`` must provide
    ``forward_with_laterals`` (``AugFPN``) and ``roi_head`` must be a :class:`CSRoIHead`.
    Prediction is the stock ``TwoStageDetector.predict`` (no auxiliary computation).
    """

    def __init__(
        self,
        backbone: dict,
        rpn_head: dict,
        roi_head: dict,
        train_cfg: dict,
        test_cfg: dict,
        neck: dict | None = None,
        data_preprocessor: dict | None = None,
        init_cfg: dict | list[dict] | None = None,
    ) -> None:
        super().__init__(
            backbone=backbone, neck=neck, rpn_head=rpn_head, roi_head=roi_head,
            train_cfg=train_cfg, test_cfg=test_cfg, data_preprocessor=data_preprocessor,
            init_cfg=init_cfg,
        )
        owner = "CSTwoStageDetector"
        _check_neck(owner, getattr(self, "neck", None))
        if not isinstance(self.roi_head, CSRoIHead):
            raise TypeError(
                f"{owner}: roi_head must be a CSRoIHead (roi_head=dict(type='CSRoIHead', ...)), "
                f"got {type(self.roi_head).__name__}"
            )
        _check_pyramid(owner, self.neck, self.roi_head)

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> dict:
        """TwoStageDetector's loss with the laterals handed to the RoI head.

        Args:
            batch_inputs: images (N, 3, H, W).
            batch_data_samples: ground truth per image.
        """
        feats = self.backbone(batch_inputs)
        if self.roi_head.aux_loss_weight > 0:
            x, laterals = self.neck.forward_with_laterals(feats)
        else:
            x, laterals = self.neck(feats), None
        losses = dict()
        if self.with_rpn:  # as TwoStageDetector.loss
            proposal_cfg = self.train_cfg.get("rpn_proposal", self.test_cfg.rpn)
            rpn_data_samples = copy.deepcopy(batch_data_samples)
            for data_sample in rpn_data_samples:
                data_sample.gt_instances.labels = torch.zeros_like(
                    data_sample.gt_instances.labels)
            rpn_losses, rpn_results_list = self.rpn_head.loss_and_predict(
                x, rpn_data_samples, proposal_cfg=proposal_cfg)
            for key in list(rpn_losses):
                if "loss" in key and "rpn" not in key:
                    rpn_losses[f"rpn_{key}"] = rpn_losses.pop(key)
            losses.update(rpn_losses)
        else:
            if batch_data_samples[0].get("proposals", None) is None:
                raise ValueError("CSTwoStageDetector without rpn_head needs data_sample.proposals")
            rpn_results_list = [sample.proposals for sample in batch_data_samples]
        losses.update(
            self.roi_head.loss(x, rpn_results_list, batch_data_samples, laterals=laterals))
        return losses


def _check_pyramid(owner: str, neck: nn.Module, roi_head: CSRoIHead) -> None:
    """Feature counts / channels of the RoI extractors against the neck, at construction."""
    laterals = _neck_laterals(neck)
    aux = roi_head.aux_roi_extractor
    if aux is not None and laterals is not None and aux.num_inputs > laterals:
        raise ValueError(
            f"{owner}: roi_head.aux_roi_extractor.featmap_strides={aux.featmap_strides} has "
            f"{aux.num_inputs} levels but the neck has {laterals} pre-fusion laterals"
        )
    outs = getattr(neck, "num_outs", None)
    main = roi_head.bbox_roi_extractor
    if outs is not None and main.num_inputs > outs:
        raise ValueError(
            f"{owner}: roi_head.bbox_roi_extractor.featmap_strides={main.featmap_strides} has "
            f"{main.num_inputs} levels but the neck has num_outs={outs}"
        )
    channels = getattr(neck, "out_channels", None)
    for name, extractor in (("bbox_roi_extractor", main), ("aux_roi_extractor", aux)):
        if extractor is not None and channels is not None and extractor.out_channels != channels:
            raise ValueError(
                f"{owner}: roi_head.{name}.out_channels={extractor.out_channels} does not "
                f"match neck.out_channels={channels}"
            )


class CSSingleStageDetector(SingleStageDetector):
    """One-stage detector (e.g. RetinaNet) trained with Consistent Supervision.

    Args:
        backbone, neck, bbox_head, train_cfg, test_cfg, data_preprocessor, init_cfg: as
            :class:`mmdet.models.detectors.SingleStageDetector`; ``neck`` must provide
            ``forward_with_laterals`` (``AugFPN``).
        aux_loss_weight: weight of the auxiliary dense-head loss; 0 disables the branch.
        aux_bbox_head: None (default) applies ``bbox_head`` itself to the pre-fusion pyramid
            (shared parameters); a config builds a separate auxiliary dense head (it must
            produce as many levels as ``bbox_head``; its ``train_cfg``/``test_cfg`` are the
            detector's; not built when ``aux_loss_weight`` is 0).
    """

    def __init__(
        self,
        backbone: dict,
        neck: dict,
        bbox_head: dict,
        aux_loss_weight: float = DEFAULT_AUX_LOSS_WEIGHT,
        aux_bbox_head: dict | None = None,
        train_cfg: dict | None = None,
        test_cfg: dict | None = None,
        data_preprocessor: dict | None = None,
        init_cfg: dict | list[dict] | None = None,
    ) -> None:
        owner = "CSSingleStageDetector"
        weight = _check_weight(owner, aux_loss_weight)
        super().__init__(
            backbone=backbone, neck=neck, bbox_head=bbox_head, train_cfg=train_cfg,
            test_cfg=test_cfg, data_preprocessor=data_preprocessor, init_cfg=init_cfg,
        )
        self.aux_loss_weight = weight
        _check_neck(owner, getattr(self, "neck", None))
        if aux_bbox_head is not None and weight > 0:
            aux_bbox_head = copy.deepcopy(aux_bbox_head)
            aux_bbox_head.update(train_cfg=train_cfg, test_cfg=test_cfg)
            self.aux_bbox_head = MODELS.build(aux_bbox_head)
        else:
            self.aux_bbox_head = None

    @property
    def aux_head(self) -> nn.Module:
        """The dense head applied to the pre-fusion pyramid."""
        return self.bbox_head if self.aux_bbox_head is None else self.aux_bbox_head

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> dict:
        """Main dense-head loss plus the weighted ``aux_*`` loss on the pre-fusion pyramid.

        Args:
            batch_inputs: images (N, 3, H, W).
            batch_data_samples: ground truth per image.
        """
        feats = self.backbone(batch_inputs)
        if self.aux_loss_weight == 0:
            return self.bbox_head.loss(self.neck(feats), batch_data_samples)
        x, laterals = self.neck.forward_with_laterals(feats)
        losses = self.bbox_head.loss(x, batch_data_samples)
        pre_fusion = tuple(laterals) + tuple(x[len(laterals):])  # same sizes as x
        aux = self.aux_head.loss(pre_fusion, batch_data_samples)
        losses.update(_aux_losses(aux, self.aux_loss_weight))
        return losses
