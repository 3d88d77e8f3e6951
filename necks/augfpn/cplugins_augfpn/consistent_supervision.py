"""Consistent Supervision (AugFPN, Guo et al., CVPR 2020) for mmdet 3.x detectors.

During training the pre-fusion laterals ``M_i`` of the pyramid (``lateral_conv`` outputs before
the RFA residual and the top-down sums, from a neck with ``forward_with_laterals`` such as
``AugFPN``: the authors' ``raw_laternals``) get auxiliary R-CNN supervision; the weighted
auxiliary losses appear in the loss dict per level as ``aux_loss_cls_level<l>`` /
``aux_loss_bbox_level<l>`` (and ``aux_acc_level<l>``). Prediction never computes the branch
(``predict`` runs the stock path, the neck's plain ``forward``).

The computation is the authors' (github.com/Gus-Guo/AugFPN: ``detectors/two_stage.py``,
``detectors/single_stage.py``, ``roi_extractors/all_level_auxiliary.py``,
``bbox_heads/bbox_head_auxiliary.py``), checked term by term in
``tests/test_authors_reference.py``: every RoI is pooled from every lateral
(:class:`AllLevelRoIExtractor`, rows RoI-major) and goes through an auxiliary box head whose
parameters are shared across levels (not with the main head), and each level ``l`` adds::

    aux_loss_weight * CE(cls_l, labels)  +  aux_loss_weight * SmoothL1_beta=1(reg_l, targets)

(averaged over the K sampled RoIs, like the main head's terms), i.e. a *sum* over the levels
(L = 4 for Faster R-CNN: 4 x the weight of one level), ``aux_loss_weight`` = the authors'
``alpha`` = 0.25. :func:`cs_level_losses` / :func:`cs_bbox_loss` are that loss, reusable by other
RoI heads (e.g. a cascade).

* Two-stage (:class:`CSTwoStageDetector` + :class:`CSRoIHead`): the RoIs and targets are the
  main R-CNN head's sampling.
* One-stage (:class:`CSSingleStageDetector`, RetinaNet / FCOS): as the authors' single-stage
  detector, the dense head's own detections (detached, NMS 0.7) are the proposals; they are
  assigned (IoU 0.5) and sampled (512 per image, 25 % positive, ground truth added) like an
  R-CNN's, pooled from the laterals and supervised as above. ``aux_mode='dense_head'`` is an
  opt-in alternative that is *not* the authors' (the dense head applied to the pre-fusion
  pyramid).

``aux_loss_weight=0`` switches the branch off: the auxiliary modules are not built (no unused
parameters under DDP) and training computes exactly the stock detector.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from numbers import Real

import torch
import torch.nn.functional as F
from mmdet.models.detectors import SingleStageDetector, TwoStageDetector
from mmdet.models.roi_heads import StandardRoIHead
from mmdet.models.roi_heads.bbox_heads import BBoxHead, ConvFCBBoxHead
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi
from mmengine.config import ConfigDict
from torch import Tensor, nn

from .soft_roi_extractor import AllLevelRoIExtractor

__all__ = [
    "CSRoIHead", "CSSingleStageDetector", "CSTwoStageDetector", "build_cs_branch",
    "cs_aux_forward", "cs_bbox_loss", "cs_level_losses", "default_aux_bbox_head",
]

#: default Consistent Supervision weight: the authors' ``alpha``, applied to every level's loss
DEFAULT_AUX_LOSS_WEIGHT = 0.25
#: the authors' auxiliary losses (``AuxiliaryBBoxHead.loss``: ``weighted_cross_entropy`` and
#: ``weighted_smoothl1`` with its default beta 1)
AUX_LOSS_CLS = dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0)
AUX_LOSS_BBOX = dict(type="SmoothL1Loss", beta=1.0, loss_weight=1.0)
AUX_MODES = ("rcnn", "dense_head")
#: the authors' one-stage settings (configs/retinanet_r50_augfpn_1x.py and
#: fcos_r50_caffe_augfpn_gn_1x_4gpu.py, ``train_cfg.auxiliary``); v0's MaxIoUAssigner always
#: matched each gt's best proposals (``match_low_quality=True`` in mmdet 3)
ONE_STAGE_AUX_TRAIN_CFG = dict(
    assigner=dict(type="MaxIoUAssigner", pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5,
                  match_low_quality=True, ignore_iof_thr=-1),
    sampler=dict(type="RandomSampler", num=512, pos_fraction=0.25, neg_pos_ub=-1,
                 add_gt_as_proposals=True),
    proposal=dict(nms_pre=2000, score_thr=0.01, nms=dict(type="nms", iou_threshold=0.7),
                  max_per_img=1000, min_bbox_size=0),
    pos_weight=-1,
)


def _require_laterals(owner: str, weight: float, laterals: object) -> None:
    """A RoI head's ``loss`` with Consistent Supervision on needs the neck's laterals."""
    if weight > 0 and laterals is None:
        raise ValueError(
            f"{owner}.loss: laterals=None but aux_loss_weight={weight}; use "
            "type='CSTwoStageDetector' (it passes the neck's pre-fusion laterals) or set "
            "aux_loss_weight=0")


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


def _aux_losses(losses: dict, weight: float, suffix: str = "") -> dict:
    """Prefix every key with ``aux_`` (and append ``suffix``); weight the ``loss`` terms
    (tensors or lists)."""
    out = {}
    for key, value in losses.items():
        if "loss" in key:
            if isinstance(value, (list, tuple)):
                value = [v * weight for v in value]
            else:
                value = value * weight
        out[f"aux_{key}{suffix}"] = value
    return out


# ------------------------------------------------------------------ the reusable CS branch
def default_aux_bbox_head(bbox_head: dict) -> dict:
    """The auxiliary box head config for a main ``bbox_head`` config: a copy of it (own
    parameters) with the authors' losses, softmax cross-entropy and smooth L1 (beta 1) on the
    encoded deltas, whatever the main head uses (mmdet 3's Faster R-CNN: L1)."""
    head = copy.deepcopy(dict(bbox_head))
    head.update(loss_cls=dict(AUX_LOSS_CLS), loss_bbox=dict(AUX_LOSS_BBOX),
                reg_decoded_bbox=False)
    return head


def build_cs_branch(
    owner: str,
    bbox_roi_extractor: dict,
    bbox_head: dict,
    aux_roi_extractor: dict | None = None,
    aux_bbox_head: dict | None = None,
    num_classes: int | None = None,
) -> tuple[AllLevelRoIExtractor, nn.Module]:
    """Build the auxiliary extractor and box head of one R-CNN stage.

    Args:
        owner: name used in error messages.
        bbox_roi_extractor, bbox_head: the stage's main configs (defaults are derived from
            them: the extractor's ``roi_layer`` / ``out_channels`` / ``featmap_strides``,
            :func:`default_aux_bbox_head`).
        aux_roi_extractor: an :class:`AllLevelRoIExtractor` config, or None.
        aux_bbox_head: the auxiliary box head config (used as given), or None.
        num_classes: the main head's number of classes, which the auxiliary head must have
            (not checked when None).

    Returns:
        ``(extractor, head)``.
    """
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
            f"{owner}: aux_roi_extractor must build an AllLevelRoIExtractor (every RoI "
            f"from every level), got type={type(extractor).__name__!r}"
        )
    head = MODELS.build(default_aux_bbox_head(bbox_head) if aux_bbox_head is None
                        else aux_bbox_head)
    if num_classes is not None and getattr(head, "num_classes", None) != num_classes:
        raise ValueError(
            f"{owner}: aux_bbox_head.num_classes must equal bbox_head.num_classes="
            f"{num_classes} (same targets), got {getattr(head, 'num_classes', None)!r}"
        )
    return extractor, head


def cs_aux_forward(extractor: AllLevelRoIExtractor, head: nn.Module,
                   laterals: Sequence[Tensor], rois: Tensor,
                   channels_last: bool = True) -> tuple[Tensor, Tensor, int]:
    """Auxiliary head outputs of ``rois`` (K, 5) pooled from every lateral (N, C, H_l, W_l).

    Returns ``(cls_score, bbox_pred, L)``, rows RoI-major (row ``k * L + l``: RoI k on level
    l, as the authors' ``AuxAllLevelRoIExtractor``). With ``channels_last`` and a head that
    flattens first (mmdet's ``Shared2FCBBoxHead``, the default: FCs only, no convs or average
    pool) on the gather backend, the pooled (K, L, 7, 7, C) features feed the first FC as they
    are and its weight is permuted instead (C * 49 columns, a fraction of the K * L * 49 * C
    features): the same products without transposing the features forward and back.
    """
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


def cs_level_losses(head: nn.Module, cls_score: Tensor | None, bbox_pred: Tensor | None,
                    rois: Tensor, targets: Sequence[Tensor], num_levels: int,
                    weight: float) -> dict:
    """The authors' per-level Consistent Supervision loss (``AuxiliaryBBoxHead.loss``).

    Args:
        head: the auxiliary box head (an mmdet ``BBoxHead``; its ``loss`` and loss modules).
        cls_score, bbox_pred: (K * L, ...) head outputs, rows RoI-major (:func:`cs_aux_forward`).
        rois: (K, 5) the sampled RoIs.
        targets: ``(labels, label_weights, bbox_targets, bbox_weights)`` of the K RoIs
            (``head.get_targets(..., concat=True)``), the same for every level.
        num_levels: L.
        weight: ``aux_loss_weight`` (the authors' alpha), applied to every level's terms.

    Returns:
        ``aux_loss_cls_level<l>``, ``aux_loss_bbox_level<l>`` (each ``weight`` x ``head.loss``
        of level l's K rows: classification averaged over the RoIs, regression summed over the
        positives / K) and ``aux_acc_level<l>``, for l < L. Their sum is the CS term.
    """
    losses = {}
    for level in range(num_levels):
        rows = slice(level, None, num_levels)
        level_losses = head.loss(None if cls_score is None else cls_score[rows],
                                 None if bbox_pred is None else bbox_pred[rows],
                                 rois, *targets)
        losses.update(_aux_losses(level_losses, weight, suffix=f"_level{level}"))
    return losses


def cs_bbox_loss(extractor: AllLevelRoIExtractor, head: nn.Module,
                 laterals: Sequence[Tensor], sampling_results: list, rcnn_train_cfg,
                 weight: float) -> dict:
    """Consistent Supervision of one R-CNN stage: the sampled RoIs of ``sampling_results``
    pooled from every lateral by ``extractor``, ``head`` on them, :func:`cs_level_losses`
    against ``head.get_targets(sampling_results, rcnn_train_cfg)``."""
    rois = bbox2roi([res.priors for res in sampling_results])  # (K, 5)
    cls_score, bbox_pred, levels = cs_aux_forward(extractor, head, laterals, rois)
    targets = head.get_targets(sampling_results, rcnn_train_cfg, concat=True)
    return cs_level_losses(head, cls_score, bbox_pred, rois, targets, levels, weight)


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


class CSRoIHead(StandardRoIHead):
    """``StandardRoIHead`` with the two-stage Consistent Supervision branch (training only).

    Args:
        bbox_roi_extractor, bbox_head, mask_*, shared_head, train_cfg, test_cfg, init_cfg:
            as :class:`mmdet.models.roi_heads.StandardRoIHead` (``bbox_roi_extractor`` may be
            ``SoftRoIExtractor`` for Soft RoI Selection).
        aux_loss_weight: weight of *each level's* auxiliary losses (the authors' alpha); 0
            disables the branch (the auxiliary modules are then not built: the stock RoI head).
        aux_bbox_head: config of the auxiliary box head, shared across levels (default:
            :func:`default_aux_bbox_head` of ``bbox_head``: a copy with the authors' CE and
            smooth-L1 losses); must have ``bbox_head``'s ``num_classes``.
        aux_roi_extractor: config of an :class:`AllLevelRoIExtractor` pooling each sampled RoI
            from every lateral (default: ``bbox_roi_extractor``'s ``roi_layer``,
            ``out_channels`` and ``featmap_strides``).

    :meth:`loss` takes the laterals as ``laterals=`` (:class:`CSTwoStageDetector` passes them).
    No auxiliary mask loss (the authors' optional ``mask_auxiliary`` of Mask R-CNN).
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
        self.aux_roi_extractor, self.aux_bbox_head = build_cs_branch(
            "CSRoIHead", bbox_roi_extractor, bbox_head, aux_roi_extractor, aux_bbox_head,
            num_classes=self.bbox_head.num_classes)

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
        _require_laterals("CSRoIHead", self.aux_loss_weight, laterals)
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
        """The Consistent Supervision losses of the main head's sampling (:func:`cs_bbox_loss`):
        ``aux_loss_cls_level<l>``, ``aux_loss_bbox_level<l>`` (times ``aux_loss_weight``),
        ``aux_acc_level<l>`` for each lateral l."""
        return cs_bbox_loss(self.aux_roi_extractor, self.aux_bbox_head, laterals,
                            sampling_results, self.train_cfg, self.aux_loss_weight)

    def aux_forward(self, laterals: list[Tensor], rois: Tensor,
                    channels_last: bool = True) -> tuple[Tensor, Tensor, int]:
        """:func:`cs_aux_forward` with this head's auxiliary extractor and box head."""
        return cs_aux_forward(self.aux_roi_extractor, self.aux_bbox_head, laterals, rois,
                              channels_last)


class CSTwoStageDetector(TwoStageDetector):
    """Two-stage detector (e.g. Faster R-CNN) trained with Consistent Supervision.

    Same arguments as :class:`mmdet.models.detectors.FasterRCNN`; ``neck`` must provide
    ``forward_with_laterals`` (``AugFPN``) and ``roi_head`` must be a :class:`CSRoIHead` (or a
    ``cplugins_augfpn.cascade.CSCascadeRoIHead``).
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
        from .cascade import CSCascadeRoIHead  # not at the top: cascade.py imports this module

        if isinstance(self.roi_head, CSCascadeRoIHead):
            self.roi_head.check_pyramid(owner, self.neck)
            return
        if not isinstance(self.roi_head, CSRoIHead):
            raise TypeError(
                f"{owner}: roi_head must be a CSRoIHead (roi_head=dict(type='CSRoIHead', ...)) "
                f"or, for a cascade, a CSCascadeRoIHead, got {type(self.roi_head).__name__}"
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
    """One-stage detector (RetinaNet, FCOS) trained with Consistent Supervision.

    Default (``aux_mode='rcnn'``), the authors' single-stage Consistent Supervision
    (``detectors/single_stage.py``): the dense head's detections on the fused pyramid
    (detached; ``aux_train_cfg['proposal']``: NMS 0.7, at most 1000 per image) are assigned to
    the ground truth and sampled like an R-CNN's, every sampled RoI is pooled from each
    pre-fusion lateral (C3-C5 laterals: 3 levels) and an auxiliary box head (2 shared FCs of
    1024, the dense head's classes) is trained on them, with :func:`cs_level_losses`.

    Args:
        backbone, neck, bbox_head, train_cfg, test_cfg, data_preprocessor, init_cfg: as
            :class:`mmdet.models.detectors.SingleStageDetector`; ``neck`` must provide
            ``forward_with_laterals`` (``AugFPN``).
        aux_loss_weight: weight of each level's auxiliary losses; 0 disables the branch.
        aux_mode: ``'rcnn'`` (the authors') or ``'dense_head'``: opt-in, not the authors':
            the dense head applied to the pre-fusion pyramid (laterals plus the extra levels
            above them) with the main head's anchors / points and targets, its loss times
            ``aux_loss_weight`` (cheaper: no RoI pooling).
        aux_bbox_head: ``'rcnn'``: the auxiliary box head config (default
            ``Shared2FCBBoxHead`` with 1024 FC channels, 7x7 RoIs, the dense head's
            ``num_classes``, delta stds (0.1, 0.1, 0.2, 0.2), CE + smooth-L1 losses, as the
            authors'). ``'dense_head'``: None applies ``bbox_head`` itself (shared parameters),
            a config builds a separate dense head (its ``train_cfg`` / ``test_cfg`` are the
            detector's).
        aux_roi_extractor: ``'rcnn'``: an :class:`AllLevelRoIExtractor` config (default:
            mmcv ``RoIAlign`` 7x7, ``sampling_ratio=2``, over the laterals' strides).
        aux_train_cfg: ``'rcnn'``: ``assigner``, ``sampler``, ``proposal`` and ``pos_weight``
            of the auxiliary branch, updating :data:`ONE_STAGE_AUX_TRAIN_CFG` (the authors').

    Nothing auxiliary is built when ``aux_loss_weight`` is 0.
    """

    def __init__(
        self,
        backbone: dict,
        neck: dict,
        bbox_head: dict,
        aux_loss_weight: float = DEFAULT_AUX_LOSS_WEIGHT,
        aux_mode: str = "rcnn",
        aux_bbox_head: dict | None = None,
        aux_roi_extractor: dict | None = None,
        aux_train_cfg: dict | None = None,
        train_cfg: dict | None = None,
        test_cfg: dict | None = None,
        data_preprocessor: dict | None = None,
        init_cfg: dict | list[dict] | None = None,
    ) -> None:
        owner = "CSSingleStageDetector"
        weight = _check_weight(owner, aux_loss_weight)
        if aux_mode not in AUX_MODES:
            raise ValueError(f"{owner}: aux_mode must be one of {AUX_MODES}, got {aux_mode!r}")
        if aux_mode == "dense_head" and (aux_roi_extractor is not None
                                         or aux_train_cfg is not None):
            raise ValueError(
                f"{owner}: aux_roi_extractor / aux_train_cfg configure aux_mode='rcnn'; "
                f"aux_mode='dense_head' uses neither"
            )
        super().__init__(
            backbone=backbone, neck=neck, bbox_head=bbox_head, train_cfg=train_cfg,
            test_cfg=test_cfg, data_preprocessor=data_preprocessor, init_cfg=init_cfg,
        )
        self.aux_loss_weight = weight
        self.aux_mode = aux_mode
        _check_neck(owner, getattr(self, "neck", None))
        self.aux_bbox_head = None
        self.aux_roi_extractor = None
        self.aux_train_cfg = None
        if weight == 0:
            return
        if aux_mode == "dense_head":
            if aux_bbox_head is not None:
                aux_bbox_head = copy.deepcopy(aux_bbox_head)
                aux_bbox_head.update(train_cfg=train_cfg, test_cfg=test_cfg)
                self.aux_bbox_head = MODELS.build(aux_bbox_head)
            return
        self._build_rcnn_branch(owner, aux_bbox_head, aux_roi_extractor, aux_train_cfg)

    def _build_rcnn_branch(self, owner: str, aux_bbox_head: dict | None,
                           aux_roi_extractor: dict | None, aux_train_cfg: dict | None) -> None:
        laterals = _neck_laterals(self.neck)
        channels = getattr(self.neck, "out_channels", None)
        generator = getattr(self.bbox_head, "prior_generator", None)
        if aux_roi_extractor is None:
            strides = getattr(generator, "strides", None)
            if laterals is None or channels is None or strides is None:
                raise ValueError(
                    f"{owner}: cannot derive the default aux_roi_extractor (needs the neck's "
                    f"lateral_convs / out_channels and bbox_head.prior_generator.strides); "
                    f"pass aux_roi_extractor=dict(type='AllLevelRoIExtractor', ...)"
                )
            aux_roi_extractor = dict(
                type="AllLevelRoIExtractor",
                roi_layer=dict(type="RoIAlign", output_size=7, sampling_ratio=2),
                out_channels=channels,
                featmap_strides=[_stride(s) for s in list(strides)[:laterals]])
        if aux_bbox_head is None:
            aux_bbox_head = dict(
                type="Shared2FCBBoxHead", in_channels=channels, fc_out_channels=1024,
                roi_feat_size=7, num_classes=self.bbox_head.num_classes,
                bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0] * 4,
                                target_stds=[0.1, 0.1, 0.2, 0.2]),
                reg_class_agnostic=False, loss_cls=dict(AUX_LOSS_CLS),
                loss_bbox=dict(AUX_LOSS_BBOX))
        # the "main" configs only supply the extractor / head defaults, given explicitly here
        self.aux_roi_extractor, self.aux_bbox_head = build_cs_branch(
            owner, {}, {}, aux_roi_extractor, aux_bbox_head,
            num_classes=self.bbox_head.num_classes)
        if not isinstance(self.aux_bbox_head, BBoxHead):
            raise TypeError(
                f"{owner}: aux_mode='rcnn' needs an R-CNN box head as aux_bbox_head (e.g. "
                f"type='Shared2FCBBoxHead'), got {type(self.aux_bbox_head).__name__}; a dense "
                f"head goes with aux_mode='dense_head'"
            )
        if laterals is not None and self.aux_roi_extractor.num_inputs > laterals:
            raise ValueError(
                f"{owner}: aux_roi_extractor.featmap_strides="
                f"{self.aux_roi_extractor.featmap_strides} has "
                f"{self.aux_roi_extractor.num_inputs} levels but the neck has {laterals} "
                f"pre-fusion laterals"
            )
        cfg = copy.deepcopy(ONE_STAGE_AUX_TRAIN_CFG)
        unknown = set(aux_train_cfg or {}) - set(cfg)
        if unknown:
            raise ValueError(f"{owner}: aux_train_cfg keys must be among {sorted(cfg)}, got "
                             f"{sorted(unknown)}")
        cfg.update(copy.deepcopy(dict(aux_train_cfg or {})))
        self.aux_train_cfg = ConfigDict(cfg)
        self.aux_assigner = TASK_UTILS.build(self.aux_train_cfg.assigner)
        self.aux_sampler = TASK_UTILS.build(self.aux_train_cfg.sampler)

    @property
    def aux_head(self) -> nn.Module:
        """The auxiliary head: the R-CNN box head (``'rcnn'``) or the dense head applied to
        the pre-fusion pyramid (``'dense_head'``)."""
        return self.bbox_head if self.aux_bbox_head is None else self.aux_bbox_head

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> dict:
        """Main dense-head loss plus the weighted ``aux_*`` losses.

        Args:
            batch_inputs: images (N, 3, H, W).
            batch_data_samples: ground truth per image.
        """
        feats = self.backbone(batch_inputs)
        if self.aux_loss_weight == 0:
            return self.bbox_head.loss(self.neck(feats), batch_data_samples)
        x, laterals = self.neck.forward_with_laterals(feats)
        if self.aux_mode == "dense_head":
            losses = self.bbox_head.loss(x, batch_data_samples)
            pre_fusion = tuple(laterals) + tuple(x[len(laterals):])  # same sizes as x
            aux = self.aux_head.loss(pre_fusion, batch_data_samples)
            losses.update(_aux_losses(aux, self.aux_loss_weight))
            return losses
        losses, detections = self.bbox_head.loss_and_predict(
            x, batch_data_samples, proposal_cfg=self.aux_train_cfg.proposal)
        losses.update(self.aux_loss(laterals, detections, batch_data_samples))
        return losses

    def aux_loss(self, laterals: Sequence[Tensor], detections: list,
                 batch_data_samples: SampleList) -> dict:
        """The authors' one-stage CS: ``detections`` (per image, ``bboxes`` in the input
        image's coordinates) assigned and sampled against the ground truth, then
        :func:`cs_bbox_loss` on the laterals."""
        batch_gt_instances, batch_gt_instances_ignore, _ = unpack_gt_instances(
            batch_data_samples)
        sampling_results = []
        for i, proposals in enumerate(detections):
            proposals.priors = proposals.pop("bboxes").detach()
            assign_result = self.aux_assigner.assign(
                proposals, batch_gt_instances[i], batch_gt_instances_ignore[i])
            sampling_results.append(
                self.aux_sampler.sample(assign_result, proposals, batch_gt_instances[i]))
        return cs_bbox_loss(self.aux_roi_extractor, self.aux_bbox_head, laterals,
                            sampling_results, self.aux_train_cfg, self.aux_loss_weight)


def _stride(stride: object) -> int | float:
    """A prior generator's stride of one level (an int or a (w, h) pair) as one number."""
    if isinstance(stride, (tuple, list)):
        if len(set(stride)) != 1:
            raise ValueError(f"CSSingleStageDetector: non-square stride {stride}; pass "
                             f"aux_roi_extractor explicitly")
        return stride[0]
    return stride
