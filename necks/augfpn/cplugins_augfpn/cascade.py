"""Consistent Supervision for cascade RoI heads (AugFPN on Cascade (Mask) R-CNN).

:class:`CSCascadeRoIHead` is mmdet's ``CascadeRoIHead`` plus the two-stage Consistent
Supervision branch of :mod:`cplugins_augfpn.consistent_supervision` on the stages named by
``aux_stages``: a stage's sampled RoIs are pooled from every pre-fusion lateral and an auxiliary
box head (its own parameters, shared across the levels; by default a copy of that stage's box
head with the authors' CE + smooth-L1 losses) is trained on them with that stage's targets,
``aux_loss_weight`` per level (:func:`~cplugins_augfpn.consistent_supervision.cs_bbox_loss`),
the sum times the stage's ``stage_loss_weights`` entry like the stage's own losses. Soft RoI
Selection needs nothing cascade-specific: ``bbox_roi_extractor=dict(type='SoftRoIExtractor')``
(one per stage) and ``mask_roi_extractor=dict(type='SoftRoIExtractor')``.

Which stages: the first only by default (``aux_stages=(0,)``). Consistent Supervision asks the
*laterals* (features before the top-down fusion) to be discriminative on their own; that is a
property of the features, which one supervised head already trains, and stage 0 is the setting
the authors trained it in (RPN proposals, IoU 0.5 assignment, the (0.1, 0.1, 0.2, 0.2) deltas
of a single R-CNN head). Later stages re-sample refined boxes at IoU 0.6 / 0.7 with 2-3x tighter
delta targets: supervising raw pre-fusion features on that asks them for localisation precision
the paper never asked of them, and each stage costs another K x L RoI pooling and auxiliary head.
``aux_stages=(0, 1, 2)`` supervises every stage (an opt-in, untested against any published
result). Training only; prediction is the stock cascade (no auxiliary computation). No
auxiliary mask head (as :class:`~cplugins_augfpn.consistent_supervision.CSRoIHead`).
"""
from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace

from mmdet.models.roi_heads import CascadeRoIHead
from mmdet.structures import SampleList
from torch import Tensor, nn

from .consistent_supervision import (
    DEFAULT_AUX_LOSS_WEIGHT,
    _check_pyramid,
    _check_weight,
    _require_laterals,
    build_cs_branch,
    cs_bbox_loss,
)

__all__ = ["CSCascadeRoIHead"]


class CSCascadeRoIHead(CascadeRoIHead):
    """``CascadeRoIHead`` with Consistent Supervision on the stages ``aux_stages``.

    Args:
        num_stages, stage_loss_weights, bbox_roi_extractor, bbox_head, mask_roi_extractor,
            mask_head, shared_head, train_cfg, test_cfg, init_cfg: as
            :class:`mmdet.models.roi_heads.CascadeRoIHead` (``bbox_roi_extractor`` /
            ``mask_roi_extractor`` may be ``SoftRoIExtractor``, one config or one per stage).
        aux_loss_weight: weight of each level's auxiliary losses (the authors' alpha); 0
            disables the branch (nothing auxiliary is built: the stock cascade).
        aux_stages: the supervised stages (distinct indices < ``num_stages``); default the
            first only (see the module doc).
        aux_bbox_head: config of every supervised stage's auxiliary box head (default: that
            stage's ``bbox_head`` with the authors' losses); its ``num_classes`` must be the
            stage's.
        aux_roi_extractor: config of an ``AllLevelRoIExtractor`` (default: the stage's
            ``roi_layer``, ``out_channels`` and ``featmap_strides``).

    :meth:`loss` takes the laterals as ``laterals=`` (``CSTwoStageDetector`` passes them); the
    auxiliary losses appear as ``s<stage>.aux_loss_cls_level<l>`` /
    ``s<stage>.aux_loss_bbox_level<l>`` (and ``s<stage>.aux_acc_level<l>``).
    """

    def __init__(
        self,
        num_stages: int,
        stage_loss_weights: Sequence[float],
        bbox_roi_extractor: dict | list[dict],
        bbox_head: dict | list[dict],
        aux_loss_weight: float = DEFAULT_AUX_LOSS_WEIGHT,
        aux_stages: Sequence[int] = (0,),
        aux_bbox_head: dict | None = None,
        aux_roi_extractor: dict | None = None,
        mask_roi_extractor: dict | list[dict] | None = None,
        mask_head: dict | list[dict] | None = None,
        shared_head: dict | None = None,
        train_cfg: list[dict] | None = None,
        test_cfg: dict | None = None,
        init_cfg: dict | list[dict] | None = None,
    ) -> None:
        owner = "CSCascadeRoIHead"
        self.aux_loss_weight = _check_weight(owner, aux_loss_weight)
        stages = list(aux_stages) if isinstance(aux_stages, Sequence) else None
        if (not stages or len(set(stages)) != len(stages)
                or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < num_stages
                           for s in stages)):
            raise ValueError(
                f"{owner}: aux_stages must be distinct stage indices in 0..{num_stages - 1} "
                f"(e.g. (0,)), got {aux_stages!r}"
            )
        self.aux_stages = tuple(sorted(stages))
        super().__init__(
            num_stages=num_stages, stage_loss_weights=stage_loss_weights,
            bbox_roi_extractor=bbox_roi_extractor, bbox_head=bbox_head,
            mask_roi_extractor=mask_roi_extractor, mask_head=mask_head,
            shared_head=shared_head, train_cfg=train_cfg, test_cfg=test_cfg, init_cfg=init_cfg,
        )
        #: stage index (as a string) -> the stage's auxiliary extractor / box head
        self.aux_roi_extractors = nn.ModuleDict()
        self.aux_bbox_heads = nn.ModuleDict()
        self._laterals: Sequence[Tensor] | None = None
        if self.aux_loss_weight == 0:  # CS off: the stock cascade, no unused parameters
            return
        extractors = _per_stage(bbox_roi_extractor, num_stages)
        heads = _per_stage(bbox_head, num_stages)
        for stage in self.aux_stages:
            extractor, head = build_cs_branch(
                f"{owner} stage {stage}", extractors[stage], heads[stage], aux_roi_extractor,
                aux_bbox_head, num_classes=self.bbox_head[stage].num_classes)
            self.aux_roi_extractors[str(stage)] = extractor
            self.aux_bbox_heads[str(stage)] = head

    def check_pyramid(self, owner: str, neck: nn.Module) -> None:
        """Every stage's RoI extractors against ``neck`` (levels, channels), at construction
        (as ``CSTwoStageDetector`` checks a ``CSRoIHead``)."""
        for stage in range(self.num_stages):
            aux = self.aux_roi_extractors[str(stage)] if str(stage) in \
                self.aux_roi_extractors else None
            _check_pyramid(f"{owner} (stage {stage})", neck, SimpleNamespace(
                aux_roi_extractor=aux, bbox_roi_extractor=self.bbox_roi_extractor[stage]))

    def loss(self, x: tuple[Tensor, ...], rpn_results_list: list,
             batch_data_samples: SampleList, laterals: Sequence[Tensor] | None = None) -> dict:
        """``CascadeRoIHead.loss`` plus the supervised stages' auxiliary losses.

        Args:
            x: pyramid levels (N, C, H_l, W_l).
            rpn_results_list: proposals per image.
            batch_data_samples: ground truth per image.
            laterals: pre-fusion laterals (N, C, H_l, W_l), finest first; required when
                ``aux_loss_weight > 0``.
        """
        _require_laterals("CSCascadeRoIHead", self.aux_loss_weight, laterals)
        self._laterals = laterals
        try:
            return super().loss(x, rpn_results_list, batch_data_samples)
        finally:
            self._laterals = None

    def bbox_loss(self, stage: int, x: tuple[Tensor, ...], sampling_results: list) -> dict:
        """``CascadeRoIHead.bbox_loss`` of ``stage``; on a supervised stage its ``loss_bbox``
        also holds the auxiliary losses of the same sampling (``CascadeRoIHead.loss`` then
        weights them by the stage's loss weight and prefixes ``s<stage>.``)."""
        results = super().bbox_loss(stage, x, sampling_results)
        if self._laterals is not None and str(stage) in self.aux_bbox_heads:
            results["loss_bbox"].update(cs_bbox_loss(
                self.aux_roi_extractors[str(stage)], self.aux_bbox_heads[str(stage)],
                self._laterals, sampling_results, self.train_cfg[stage],
                self.aux_loss_weight))
        return results


def _per_stage(cfg: dict | list[dict], num_stages: int) -> list[dict]:
    """One config per stage, as ``CascadeRoIHead`` expands them."""
    return list(cfg) if isinstance(cfg, list) else [cfg] * num_stages
