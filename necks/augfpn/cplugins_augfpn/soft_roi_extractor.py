"""Soft RoI Selection (AugFPN, Guo et al., CVPR 2020) and all-level RoI pooling.

Instead of assigning each RoI to one pyramid level (:class:`SingleRoIExtractor`), Soft RoI
Selection pools every RoI from all ``L`` levels and fuses the pooled features with learned,
per-RoI spatial attention (the paper's adaptive spatial fusion, as in the public code)::

    r_l = RoIAlign_l(P_l, rois)                                  # (K, C, S, S), l < L
    a   = sigmoid(weight_conv(relu(fuse_conv(cat_l r_l))))       # (K, L, S, S)
    out = sum_l a[:, l] * r_l                                    # (K, C, S, S)

``fuse_conv`` is 1x1 (L*C -> C'), ``weight_conv`` 3x3 (C' -> L), C' = ``attention_channels``.

Pooling every RoI from every level has two backends (``backend=`` of the extractors):

- ``"gather"`` (``"auto"`` picks it for CPU inputs when the RoI layers are mmcv ``RoIAlign`` in
  ``avg`` mode with a fixed ``sampling_ratio > 0``): :func:`~cplugins_augfpn.roi_gather.
  roi_align_levels` pools all levels with one channels-last ``embedding_bag`` gather, about 5x
  faster than mmcv's CPU kernel on R50 shapes, into a (K, S, S, L, C) layout where the 1x1
  fusion is one matrix product.
- ``"mmcv"`` (any RoI layer, the only choice for adaptive sampling or max pooling, and
  ``"auto"``'s choice on GPU): :func:`pool_all_levels` with two mmcv ``roi_align`` calls
  whatever ``L`` is: level 0 on its own, and levels 1..L-1 stacked along the batch axis
(right/bottom replicate-padded to a common size, RoIs pre-scaled per level, ``spatial_scale=1``).
RoIs are laid out RoI-major, so the result is a free ``view`` (K, n, C, S, S): no concatenation
of pooled features, and ``fuse_conv`` runs as one conv per group on that view. The padding does
not change the result: mmcv's bilinear sampling clamps to the last row/column for sample points
in ``(h - 1, h]`` (interpolating towards the replicated row gives the same value, up to float
rounding of a few ulp) and returns 0 beyond ``h``, where the padded map would differ; such points
only occur for RoIs reaching past a feature map (never for in-image RoIs), which
:func:`pool_all_levels` checks, falling back to one call per level.
``benchmarks/reference_srs.py`` is the literal per-level version; the tests compare both.
"""
from __future__ import annotations

from collections.abc import Sequence
from numbers import Real

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.ops import RoIAlign, roi_align
from mmdet.models.roi_heads.roi_extractors.base_roi_extractor import BaseRoIExtractor
from torch import Tensor

from .roi_gather import RoIAlignV0, kernel_scale, roi_align_levels

__all__ = ["AllLevelRoIExtractor", "MultiLevelRoIPooling", "SoftRoIExtractor", "pool_all_levels"]

_XAVIER_INIT = dict(type="Xavier", layer="Conv2d", distribution="uniform")
#: margin (feature pixels) aligned RoIs keep from a level's bottom/right edge on the padded fast
#: path; guards against fused-multiply-add rounding differences in the kernels' coordinate maths
_EDGE_MARGIN = 1e-3
BACKENDS = ("auto", "gather", "mmcv")


def _batchable(layers: Sequence[nn.Module]) -> bool:
    """True when every layer is mmcv's ``RoIAlign`` (own kernel) with the same settings."""
    first = layers[0]
    return all(
        type(layer) is RoIAlign
        and not layer.use_torchvision
        and layer.output_size == first.output_size
        and layer.sampling_ratio == first.sampling_ratio
        and layer.pool_mode == first.pool_mode
        and layer.aligned == first.aligned
        for layer in layers
    )


def _all_v0(layers: Sequence[nn.Module]) -> bool:
    """True when every layer is :class:`RoIAlignV0` with the same settings."""
    first = layers[0]
    return all(type(layer) is RoIAlignV0 and layer.output_size == first.output_size
               and layer.sampling_ratio == first.sampling_ratio for layer in layers)


def _gatherable(layers: Sequence[nn.Module]) -> bool:
    """True when :func:`roi_align_levels` computes what the layers do (avg, fixed sampling)."""
    return _all_v0(layers) or (_batchable(layers) and layers[0].pool_mode == "avg"
                               and layers[0].sampling_ratio > 0)


def _fits(rois: Tensor, layers: Sequence[RoIAlign], sizes: Sequence[tuple[int, int]]) -> bool:
    """Whether no sample point of any RoI lies beyond the bottom/right edge of its level.

    Sample points lie in ``[start, start + extent]`` and strictly inside when the extent is
    positive. Aligned RoIs: ``reach <= size - margin`` (in-image RoIs reach at most
    ``size - 0.5``; the margin covers fused-multiply-add rounding in the kernels). Unaligned
    RoIs are at least 1 px wide, so their last sample lies at least 1/14 px before ``reach``:
    ``reach <= size`` is safe (and RoIs ending exactly at a divisible image edge stay batched).
    """
    aligned = layers[0].aligned
    offset = 0.5 if aligned else 0.0
    margin = _EDGE_MARGIN if aligned else 0.0
    limits = []
    for layer, (h, w) in zip(layers, sizes):
        scale = kernel_scale(layer.spatial_scale, rois.dtype)
        scaled = rois[:, 1:] * scale - offset  # (K, 4) x1 y1 x2 y2
        start, end = scaled[:, :2], scaled[:, 2:]
        reach = torch.maximum(start, end) if aligned else torch.maximum(end, start + 1.0)
        limits.append((reach <= reach.new_tensor([w, h]) - margin).all())
    return bool(torch.stack(limits).all())


def _pool_levels_batched(
    feats: Sequence[Tensor], rois: Tensor, layers: Sequence[RoIAlign]
) -> Tensor:
    """Pool ``rois`` from ``n`` levels in one ``roi_align`` call -> (K, n, C, S, S).

    The levels are replicate-padded to a common size and stacked along the batch axis
    (level j of image b at index ``j * N + b``); RoIs are repeated RoI-major and scaled per level.
    The caller guarantees (:func:`_fits`) that no sample point passes a level's real edge.
    """
    n, batch = len(feats), feats[0].size(0)
    height = max(f.size(2) for f in feats)
    width = max(f.size(3) for f in feats)
    stacked = torch.cat(
        [F.pad(f, (0, width - f.size(3), 0, height - f.size(2)), mode="replicate")
         if f.shape[2:] != (height, width) else f for f in feats]
    )  # (n*N, C, H, W)
    k = rois.size(0)
    scales = rois.new_tensor(
        [kernel_scale(layer.spatial_scale, rois.dtype) for layer in layers])  # (n,)
    coords = rois[:, None, 1:] * scales[None, :, None]  # (K, n, 4)
    index = rois[:, None, :1] + (batch * torch.arange(n, device=rois.device, dtype=rois.dtype)
                                 )[None, :, None]  # (K, n, 1)
    level_rois = torch.cat([index, coords], dim=2).view(k * n, 5)
    layer = layers[0]
    out = roi_align(stacked, level_rois, layer.output_size, 1.0, layer.sampling_ratio,
                    layer.pool_mode, layer.aligned)  # (K*n, C, S, S)
    return out.view(k, n, *out.shape[1:])


def pool_all_levels(
    feats: Sequence[Tensor], rois: Tensor, layers: Sequence[nn.Module]
) -> list[Tensor]:
    """Pool every RoI from every level.

    Args:
        feats: ``L`` maps (N, C, H_l, W_l), finest first.
        rois: (K, 5) ``[batch_index, x1, y1, x2, y2]`` in image coordinates.
        layers: ``L`` RoI layers (``layers[l].spatial_scale`` is ``1 / stride_l``).

    Returns:
        Groups of consecutive levels, in level order, each (K, n_g, C, S, S) with
        ``sum_g n_g == L``: ``[level 0, levels 1..L-1]`` on the batched path (two mmcv
        ``roi_align`` calls), one group per level otherwise (any RoI layer, one call each).
    """
    if _batchable(layers) and len(feats) > 1:
        rest, rest_layers = feats[1:], layers[1:]
        padded = (max(f.size(2) for f in rest), max(f.size(3) for f in rest))
        uneven = [(f.size(2), f.size(3)) != padded for f in rest]
        if not any(uneven) or _fits(
            rois, [lay for lay, u in zip(rest_layers, uneven) if u],
            [(f.size(2), f.size(3)) for f, u in zip(rest, uneven) if u],
        ):
            first = layers[0](feats[0], rois)
            return [first.unsqueeze(1), _pool_levels_batched(rest, rois, rest_layers)]
    return [layer(f, rois).unsqueeze(1) for layer, f in zip(layers, feats)]


def _check_extractor_args(
    name: str, out_channels: int, featmap_strides: Sequence[Real]
) -> list[int | float]:
    if isinstance(out_channels, bool) or not isinstance(out_channels, int) or out_channels <= 0:
        raise ValueError(f"{name}: out_channels must be a positive int, got {out_channels!r}")
    if (
        isinstance(featmap_strides, (str, bytes))
        or not isinstance(featmap_strides, Sequence)
        or not featmap_strides
        or not all(isinstance(s, Real) and not isinstance(s, bool) and s > 0
                   for s in featmap_strides)
    ):
        raise ValueError(
            f"{name}: featmap_strides must be a non-empty list of positive numbers (one per "
            f"pyramid level, e.g. [4, 8, 16, 32]), got {featmap_strides!r}"
        )
    return list(featmap_strides)


class MultiLevelRoIPooling(BaseRoIExtractor):
    """Base of the extractors that pool every RoI from every one of ``len(featmap_strides)``
    levels: argument and input checks, backend choice (``forward`` is subclasses').

    Args:
        roi_layer: RoI layer config, e.g. ``dict(type='RoIAlign', output_size=7,
            sampling_ratio=2)``: an mmcv RoI layer (other than ``RoIAlign``: ``backend``
            mmcv), or ``type='RoIAlignV0'``, the authors' mmdetection v0 RoIAlign
            (:class:`~cplugins_augfpn.roi_gather.RoIAlignV0`, gather backend).
        out_channels: channels ``C`` of every input level.
        featmap_strides: stride of each level, finest first, e.g. ``[4, 8, 16, 32]``.
        backend: ``"auto"`` (the gather on CPU inputs when the RoI layers allow it, mmcv's
            kernel otherwise), ``"gather"`` (always; needs mmcv ``RoIAlign`` layers in ``avg``
            mode with ``sampling_ratio > 0``) or ``"mmcv"`` (the RoI layers themselves).
        init_cfg: mmengine init config.
    """

    def __init__(
        self,
        roi_layer: dict,
        out_channels: int,
        featmap_strides: Sequence[int],
        backend: str = "auto",
        init_cfg: dict | list[dict] | None = None,
    ) -> None:
        name = type(self).__name__
        strides = _check_extractor_args(name, out_channels, featmap_strides)
        if backend not in BACKENDS:
            raise ValueError(f"{name}: backend must be one of {BACKENDS}, got {backend!r}")
        super().__init__(roi_layer=roi_layer, out_channels=out_channels,
                         featmap_strides=strides, init_cfg=init_cfg)
        self.output_size: tuple[int, int] = tuple(self.roi_layers[0].output_size)
        self._v0 = _all_v0(self.roi_layers)
        self.backend = backend
        self._gatherable = _gatherable(self.roi_layers)
        if backend == "gather" and not self._gatherable:
            raise ValueError(
                f"{name}: backend='gather' needs roi_layer=dict(type='RoIAlign', "
                f"pool_mode='avg', sampling_ratio>0), got {roi_layer!r}; use backend='mmcv' "
                f"or 'auto'"
            )

    def uses_gather(self, feats: Sequence[Tensor]) -> bool:
        """Whether :meth:`forward` pools ``feats`` with the gather backend."""
        if self.backend == "auto":
            return self._gatherable and feats[0].device.type == "cpu"
        return self.backend == "gather"

    def gather_levels(self, feats: Sequence[Tensor], rois: Tensor,
                      levels_first: bool = False) -> Tensor:
        """The gather backend on checked inputs: (K, S, S, L, C), or (K, L, S, S, C)."""
        layer = self.roi_layers[0]
        return roi_align_levels(feats, rois, [lay.spatial_scale for lay in self.roi_layers],
                                self.output_size, layer.sampling_ratio, layer.aligned,
                                levels_first=levels_first, v0=self._v0)

    def build_roi_layers(self, layer_cfg: dict, featmap_strides: list) -> nn.ModuleList:
        """mmdet's (an mmcv RoI layer named by ``type``), plus ``type='RoIAlignV0'``
        (:class:`~cplugins_augfpn.roi_gather.RoIAlignV0`, the authors' v0 RoIAlign)."""
        if layer_cfg.get("type") != "RoIAlignV0":
            return super().build_roi_layers(layer_cfg, featmap_strides)
        cfg = dict(layer_cfg)
        cfg.pop("type")
        return nn.ModuleList([RoIAlignV0(spatial_scale=1 / s, **cfg) for s in featmap_strides])

    def _prepare(
        self, feats: Sequence[Tensor], rois: Tensor, roi_scale_factor: float | None,
        levels: int | None = None,
    ) -> tuple[list[Tensor], Tensor]:
        """Check the inputs; the first ``levels`` (default ``num_inputs``) levels and the
        (rescaled) RoIs."""
        name = type(self).__name__
        levels = self.num_inputs if levels is None else levels
        if len(feats) < levels:
            raise ValueError(
                f"{name} has featmap_strides={self.featmap_strides} ({self.num_inputs} levels) "
                f"but got {len(feats)} feature maps"
            )
        feats = list(feats[:levels])
        for i, f in enumerate(feats):
            if f.dim() != 4 or f.size(1) != self.out_channels:
                raise ValueError(
                    f"{name}: feats[{i}] has shape {tuple(f.shape)}; expected "
                    f"(N, out_channels={self.out_channels}, H, W)"
                )
        if rois.dim() != 2 or rois.size(1) != 5:
            raise ValueError(f"{name}: rois must be (K, 5), got {tuple(rois.shape)}")
        rois = rois.type_as(feats[0])
        if roi_scale_factor is not None:
            rois = self.roi_rescale(rois, roi_scale_factor)
        return feats, rois


class AllLevelRoIExtractor(MultiLevelRoIPooling):
    """Pools every RoI from every level: ``forward(feats, rois)`` -> (K, L, C, S, S).

    Consistent Supervision (:class:`~cplugins_augfpn.consistent_supervision.CSRoIHead`) uses it
    on the pre-fusion laterals. Arguments as :class:`MultiLevelRoIPooling`.
    """

    def forward(
        self, feats: Sequence[Tensor], rois: Tensor, roi_scale_factor: float | None = None,
        channels_last: bool = False,
    ) -> Tensor:
        """``L`` maps (N, C, H_l, W_l) and (K, 5) RoIs -> (K, L, C, S, S).

        ``channels_last``: return (K, L, S, S, C) instead (contiguous, free on the gather
        backend; a permuted view of the above on the mmcv backend).
        """
        feats, rois = self._prepare(feats, rois, roi_scale_factor)
        if self.uses_gather(feats):
            pooled = self.gather_levels(feats, rois, levels_first=True)  # (K, L, S, S, C)
            return pooled if channels_last else pooled.permute(0, 1, 4, 2, 3).contiguous()
        groups = pool_all_levels(feats, rois, self.roi_layers)
        pooled = groups[0] if len(groups) == 1 else torch.cat(groups, dim=1)
        return pooled.permute(0, 1, 3, 4, 2) if channels_last else pooled


class SoftRoIExtractor(MultiLevelRoIPooling):
    """Soft RoI Selection: all-level pooling fused by per-RoI spatial attention (AugFPN).

    A drop-in replacement of mmdet's ``SingleRoIExtractor`` (same ``roi_layer``,
    ``out_channels``, ``featmap_strides``; ``forward(feats, rois) -> (K, C, S, S)``).

    Args:
        roi_layer: RoI layer config (mmcv ``RoIAlign`` takes the batched path).
        out_channels: channels ``C`` of every pyramid level (and of the output).
        featmap_strides: stride of each level, finest first. With a single level there is
            nothing to select: the output is that level's RoI layer output, and no attention
            parameters are created. Given one feature map while declaring several strides,
            it pools every RoI from that map with the first stride's RoI layer, as
            ``SingleRoIExtractor`` does (``roi_scale_factor`` still applies).
        attention_channels: hidden channels ``C'`` of the attention (default ``C``, as in the
            public code).
        backend: pooling backend, as :class:`MultiLevelRoIPooling`.
        init_cfg: defaults to Xavier-uniform convs (the public code's ``init_weights``).
    """

    def __init__(
        self,
        roi_layer: dict,
        out_channels: int,
        featmap_strides: Sequence[int],
        attention_channels: int | None = None,
        backend: str = "auto",
        init_cfg: dict | list[dict] | None = _XAVIER_INIT,
    ) -> None:
        super().__init__(roi_layer=roi_layer, out_channels=out_channels,
                         featmap_strides=featmap_strides, backend=backend, init_cfg=init_cfg)
        if attention_channels is None:
            attention_channels = out_channels
        if (isinstance(attention_channels, bool) or not isinstance(attention_channels, int)
                or attention_channels <= 0):
            raise ValueError(
                f"SoftRoIExtractor: attention_channels must be a positive int or None, "
                f"got {attention_channels!r}"
            )
        self.attention_channels = attention_channels
        levels = self.num_inputs
        if levels > 1:
            self.fuse_conv = nn.Conv2d(levels * out_channels, attention_channels, 1)
            self.weight_conv = nn.Conv2d(attention_channels, levels, 3, padding=1)

    def forward(
        self, feats: Sequence[Tensor], rois: Tensor, roi_scale_factor: float | None = None
    ) -> Tensor:
        """``L`` maps (N, C, H_l, W_l) and (K, 5) RoIs -> fused RoI features (K, C, S, S).

        One map (N, C, H, W) whatever ``L``: RoI layer output on it (``SingleRoIExtractor``).
        """
        one_map = len(feats) == 1
        feats, rois = self._prepare(feats, rois, roi_scale_factor, levels=1 if one_map else None)
        if one_map or self.num_inputs == 1:
            return self.roi_layers[0](feats[0], rois)
        k, c = rois.size(0), self.out_channels
        if k == 0:  # keep every parameter in the graph (distributed training)
            dummy = sum(p.view(-1)[0] for p in self.parameters()) * 0.0
            return feats[0].new_zeros(0, c, *self.output_size) + dummy
        if self.uses_gather(feats):
            return self._fuse_gathered(self.gather_levels(feats, rois))
        groups = pool_all_levels(feats, rois, self.roi_layers)
        # fuse_conv(cat_l r_l) = sum over groups of its weight slice applied to the group's
        # RoI-major (K, n*C, S, S) view: no concatenated copy of the pooled features
        weight, bias = self.fuse_conv.weight, self.fuse_conv.bias
        hidden, first = None, 0
        for group in groups:
            n = group.size(1)
            part = F.conv2d(group.view(k, n * c, *self.output_size),
                            weight[:, first * c:(first + n) * c],
                            bias if hidden is None else None)
            hidden = part if hidden is None else hidden + part
            first += n
        attention = torch.sigmoid(self.weight_conv(F.relu(hidden)))  # (K, L, S, S)
        out, first = None, 0
        for group in groups:
            n = group.size(1)
            part = (group * attention[:, first:first + n, None]).sum(dim=1)
            out = part if out is None else out + part
            first += n
        return out

    def _fuse_gathered(self, pooled: Tensor) -> Tensor:
        """Attention fusion of gathered (K, S, S, L, C) features -> (K, C, S, S).

        ``fuse_conv`` over the concatenated ``L * C`` channels is one matrix product on the
        channels-last view; the weighted sum over the ``L`` levels is a batched (1, L) x (L, C)
        product per bin (no (K, S, S, L, C) temporary, 2-3x faster than multiply-and-sum with
        its backward on the CPU).
        """
        k, s_h, s_w, levels, c = pooled.shape
        hidden = F.linear(pooled.view(k * s_h * s_w, levels * c),
                          self.fuse_conv.weight.flatten(1), self.fuse_conv.bias)
        hidden = hidden.view(k, s_h, s_w, -1).permute(0, 3, 1, 2)  # (K, C', S, S)
        attention = torch.sigmoid(self.weight_conv(F.relu(hidden)))  # (K, L, S, S)
        fused = torch.matmul(attention.permute(0, 2, 3, 1).unsqueeze(-2), pooled)  # (K,S,S,1,C)
        return fused.view(k, s_h, s_w, c).permute(0, 3, 1, 2).contiguous()  # (K, C, S, S)
