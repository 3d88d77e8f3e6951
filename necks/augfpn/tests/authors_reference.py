"""The AugFPN authors' computation, restated in plain torch for the reference tests.

Written here from reading the authors' public code (github.com/Gus-Guo/AugFPN, mmdetection
v0, commits b315d67 / 05cf44d); no code is copied from it. Every function names the file and
the lines of theirs it restates. Parameters are plain dicts of tensors under the names the
authors' modules give them (e.g. ``high_lateral_conv.0.weight``), so a test maps the
project's parameters onto them explicitly. Plain torch only (no mmcv / mmdet).

What is restated:

* :func:`high_fpn`: ``mmdet/models/necks/high_fpn.py``, ``HighFPN.forward`` (the two-stage
  neck, P2-P6 with max-pooled extra levels), returning ``(outs, raw_laternals)``.
* :func:`high_fpn_retinanet`: ``mmdet/models/necks/high_fpn_retinanet.py``,
  ``HighFPNRetinanet.forward`` (RetinaNet / FCOS, conv extra levels, the global average of the
  RFA residual added to the first extra level).
* :func:`rfa_residual`: the "Residual Feature Augmentation" block shared by both necks
  (``AdapPool_Features`` ... ``adap_pool_fusion``).
* :func:`roi_align_v0`: mmdetection v0's ``RoIAlign`` (``mmdet/ops/roi_align``, CUDA kernel
  ``ROIAlignForward`` and ``bilinear_interpolate``): box end ``x2 + 1``, extent clamped at 0,
  ``sample_num`` points per bin axis, no half-pixel shift.
* :func:`soft_roi_selection`: ``mmdet/models/roi_extractors/soft_roi_selection.py``,
  ``SoftRoIExtractor.forward`` (multi-level branch).
* :func:`all_level_pooling`: ``mmdet/models/roi_extractors/all_level_auxiliary.py``,
  ``AuxAllLevelRoIExtractor.forward`` (rows ``k * L + l``: RoI k pooled from level l).
* :func:`shared_fc_head`: ``mmdet/models/bbox_heads/convfc_bbox_head_auxiliary.py``,
  ``AuxiliaryConvFCBBoxHead.forward`` with ``AuxiliarySharedFCBBoxHead``'s layout (shared FCs
  with ReLU, then ``fc_cls`` / ``fc_reg``).
* :func:`aux_level_losses`: ``mmdet/models/bbox_heads/bbox_head_auxiliary.py``,
  ``AuxiliaryBBoxHead.loss`` with ``weighted_cross_entropy`` and ``weighted_smoothl1`` of
  ``mmdet/core/loss/losses.py``: one classification and one regression loss per level, each
  times ``alpha``, called with the main head's targets by ``mmdet/models/detectors/
  two_stage.py`` (``loss of consistent supervison``: ``alpha=train_cfg.rcnn.alpha`` = 0.25,
  4 levels) and ``mmdet/models/detectors/single_stage.py`` (``alpha=0.25, num_level=3``).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

Params = dict[str, Tensor]

#: the pooling ratios of both necks (``pool_ratios`` default of HighFPN; hard-coded in
#: HighFPNRetinanet)
RATIOS = (0.1, 0.2, 0.3)


def _conv(x: Tensor, p: Params, name: str, stride: int = 1) -> Tensor:
    weight = p[f"{name}.weight"]
    return F.conv2d(x, weight, p[f"{name}.bias"], stride, weight.size(-1) // 2)


# ----------------------------------------------------------------------------- necks
def high_fpn_param_shapes(in_channels: Sequence[int], out_channels: int, num_outs: int,
                          start_level: int = 0, extra_convs: bool = False,
                          extra_convs_on_inputs: bool = True) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the parameters of ``HighFPN`` / ``HighFPNRetinanet`` (their
    ``__init__``: ConvModules ``lateral_convs.i.conv`` 1x1, ``fpn_convs.i.conv`` 3x3, the extra
    stride-2 ``fpn_convs``, ``high_lateral_conv.j`` 1x1 on the last input,
    ``high_lateral_conv_attention`` = Conv1x1(3*out -> out), ReLU, Conv3x3(out -> 3))."""
    shapes: dict[str, tuple[int, ...]] = {}
    used = len(in_channels) - start_level

    def conv(name: str, cin: int, cout: int, k: int) -> None:
        shapes[f"{name}.weight"] = (cout, cin, k, k)
        shapes[f"{name}.bias"] = (cout,)

    for i in range(used):
        conv(f"lateral_convs.{i}.conv", in_channels[start_level + i], out_channels, 1)
        conv(f"fpn_convs.{i}.conv", out_channels, out_channels, 3)
    if extra_convs:
        for i in range(num_outs - used):
            cin = in_channels[-1] if i == 0 and extra_convs_on_inputs else out_channels
            conv(f"fpn_convs.{used + i}.conv", cin, out_channels, 3)
    k = len(RATIOS)
    for j in range(k):
        conv(f"high_lateral_conv.{j}", in_channels[-1], out_channels, 1)
    conv("high_lateral_conv_attention.0", k * out_channels, out_channels, 1)
    conv("high_lateral_conv_attention.2", out_channels, k, 3)
    return shapes


def rfa_residual(top: Tensor, p: Params, ratios: Sequence[float] = RATIOS) -> Tensor:
    """Residual Feature Augmentation of the last backbone feature (N, Cin, h, w) -> (N, C, h, w).

    high_fpn.py ``HighFPN.forward``, lines ``h, w = inputs[-1].size(2) ...`` to the loop
    ``adap_pool_fusion += ...`` (high_fpn_retinanet.py: the same with ``high_pool_fusion``):
    adaptive average pooling to ``(max(1, int(h * r)), max(1, int(w * r)))``, a 1x1 conv per
    ratio, bilinear upsampling (``align_corners=True``) back to (h, w), attention weights
    ``sigmoid(conv3x3(relu(conv1x1(cat))))``, weighted sum.
    """
    h, w = top.shape[2:]
    feats = []
    for j, r in enumerate(ratios):
        pooled = F.adaptive_avg_pool2d(top, (max(1, int(h * r)), max(1, int(w * r))))
        feats.append(F.interpolate(_conv(pooled, p, f"high_lateral_conv.{j}"), size=(h, w),
                                   mode="bilinear", align_corners=True))
    hidden = F.relu(_conv(torch.cat(feats, 1), p, "high_lateral_conv_attention.0"))
    weights = torch.sigmoid(_conv(hidden, p, "high_lateral_conv_attention.2"))
    fusion = 0
    for j in range(len(ratios)):
        fusion = fusion + weights[:, j:j + 1] * feats[j]
    return fusion


def _top_down(inputs: Sequence[Tensor], p: Params, start_level: int,
              ratios: Sequence[float]) -> tuple[list[Tensor], list[Tensor], Tensor]:
    """Laterals, ``raw_laternals`` (cloned *before* the residual is added to the top one),
    then the residual added and the top-down sums (nearest, ``scale_factor=2``), FPN convs.

    Both necks' ``forward``: ``laterals = [lateral_conv(...)]``, ``raw_laternals = [laterals[i]
    .clone() ...]``, ``laterals[-1] += <fusion>``, ``laterals[i - 1] += F.interpolate(...)``,
    ``outs = [self.fpn_convs[i](laterals[i]) ...]``. Returns ``(outs, raw, residual)``.
    """
    used = len(inputs) - start_level
    laterals = [_conv(inputs[start_level + i], p, f"lateral_convs.{i}.conv") for i in range(used)]
    residual = rfa_residual(inputs[-1], p, ratios)
    raw = [lat.clone() for lat in laterals]
    laterals[-1] = laterals[-1] + residual
    for i in range(used - 1, 0, -1):
        laterals[i - 1] = laterals[i - 1] + F.interpolate(laterals[i], scale_factor=2,
                                                          mode="nearest")
    outs = [_conv(laterals[i], p, f"fpn_convs.{i}.conv") for i in range(used)]
    return outs, raw, residual


def high_fpn(inputs: Sequence[Tensor], p: Params, num_outs: int = 5,
             ratios: Sequence[float] = RATIOS) -> tuple[list[Tensor], list[Tensor]]:
    """``HighFPN.forward`` (high_fpn.py) as the two-stage configs use it (``start_level=0``, no
    extra convs): extra levels are ``F.max_pool2d(outs[-1], 1, stride=2)``.

    Returns ``(outs, raw_laternals)``: P2.. and the laterals Consistent Supervision reads.
    """
    outs, raw, _ = _top_down(inputs, p, 0, ratios)
    while len(outs) < num_outs:
        outs.append(F.max_pool2d(outs[-1], 1, stride=2))
    return outs, raw


def high_fpn_retinanet(inputs: Sequence[Tensor], p: Params, num_outs: int = 5,
                       start_level: int = 1, extra_convs_on_inputs: bool = True,
                       relu_before_extra_convs: bool = False
                       ) -> tuple[list[Tensor], list[Tensor]]:
    """``HighFPNRetinanet.forward`` (high_fpn_retinanet.py) with ``add_extra_convs=True``.

    First extra level: a stride-2 3x3 conv of the last input (``extra_convs_on_inputs``,
    RetinaNet) or of the last output (FCOS), then ``outs[-1] += F.adaptive_avg_pool2d(
    high_pool_fusion, (1, 1))`` (the global average of the RFA residual); further levels: conv
    of the previous one, after a ReLU with ``relu_before_extra_convs`` (FCOS).
    """
    outs, raw, residual = _top_down(inputs, p, start_level, RATIOS)
    used = len(outs)
    source = inputs[-1] if extra_convs_on_inputs else outs[-1]
    first = _conv(source, p, f"fpn_convs.{used}.conv", stride=2)
    outs.append(first + F.adaptive_avg_pool2d(residual, (1, 1)))
    for i in range(used + 1, num_outs):
        prev = F.relu(outs[-1]) if relu_before_extra_convs else outs[-1]
        outs.append(_conv(prev, p, f"fpn_convs.{i}.conv", stride=2))
    return outs, raw


# ----------------------------------------------------------------------------- RoI pooling
def _axis_weights(coord: Tensor, size: int) -> Tensor:
    """(n, size) bilinear weights of sample coordinates along one axis, as v0's
    ``bilinear_interpolate``: 0 outside ``[-1, size]``, clamp to 0 below, the last row/column
    for coordinates at or past ``size - 1``."""
    inside = ((coord >= -1.0) & (coord <= size)).to(coord.dtype)
    c = coord.clamp(min=0.0)
    low = c.long()
    top = low >= size - 1
    low = torch.where(top, torch.full_like(low, size - 1), low)
    high = torch.where(top, low, low + 1)
    frac = torch.where(top, torch.zeros_like(c), c - low.to(c.dtype))
    weights = coord.new_zeros(coord.numel(), size)
    rows = torch.arange(coord.numel())
    weights.index_put_((rows, low), (1.0 - frac) * inside, accumulate=True)
    weights.index_put_((rows, high), frac * inside, accumulate=True)
    return weights


def roi_align_v0(feat: Tensor, rois: Tensor, out_size: int, spatial_scale: float,
                 sample_num: int) -> Tensor:
    """mmdetection v0 ``RoIAlign(out_size, spatial_scale, sample_num)``: (N, C, H, W) map and
    (K, 5) ``[b, x1, y1, x2, y2]`` RoIs -> (K, C, S, S).

    Kernel ``ROIAlignForward``: ``roi_start = x1 * scale``, ``roi_end = (x2 + 1) * scale``,
    extent ``max(end - start, 0)``; sample ``y = start + ph * bin + (iy + .5) * bin / n``
    (``n = sample_num``); average of the ``n * n`` bilinear samples of each bin.
    """
    if sample_num <= 0:
        raise ValueError("roi_align_v0 restates the fixed sample_num > 0 of the configs")
    _, channels, height, width = feat.shape
    out = feat.new_zeros(rois.size(0), channels, out_size, out_size)
    steps = (torch.arange(sample_num, dtype=feat.dtype) + 0.5) / sample_num
    grid = torch.arange(out_size, dtype=feat.dtype)
    for k, roi in enumerate(rois):
        start_w, start_h = roi[1] * spatial_scale, roi[2] * spatial_scale
        end_w, end_h = (roi[3] + 1) * spatial_scale, (roi[4] + 1) * spatial_scale
        bin_w = (end_w - start_w).clamp(min=0.0) / out_size
        bin_h = (end_h - start_h).clamp(min=0.0) / out_size
        ys = (start_h + grid[:, None] * bin_h + steps[None] * bin_h).reshape(-1)  # (S*n,)
        xs = (start_w + grid[:, None] * bin_w + steps[None] * bin_w).reshape(-1)
        wy, wx = _axis_weights(ys, height), _axis_weights(xs, width)
        samples = wy @ feat[int(roi[0])] @ wx.t()  # (C, S*n, S*n)
        out[k] = samples.view(channels, out_size, sample_num, out_size, sample_num).mean((2, 4))
    return out


def soft_roi_selection(feats: Sequence[Tensor], rois: Tensor, strides: Sequence[int],
                       p: Params, out_size: int = 7, sample_num: int = 2) -> Tensor:
    """``SoftRoIExtractor.forward`` (soft_roi_selection.py), several levels: every RoI pooled
    from every level, ``spatial_attention_conv`` = Conv1x1(L*C -> C), ReLU, Conv3x3(C -> L) on
    the concatenation, ``roi_feats += sigmoid(att[:, i]) * roi_feats_list[i]``. -> (K, C, S, S).
    Parameters ``spatial_attention_conv.0.*`` and ``spatial_attention_conv.2.*``."""
    pooled = [roi_align_v0(f, rois, out_size, 1.0 / s, sample_num)
              for f, s in zip(feats, strides)]
    hidden = F.relu(_conv(torch.cat(pooled, 1), p, "spatial_attention_conv.0"))
    attention = _conv(hidden, p, "spatial_attention_conv.2")
    out = torch.zeros_like(pooled[0])
    for i in range(len(feats)):
        out = out + torch.sigmoid(attention[:, i, None]) * pooled[i]
    return out


def all_level_pooling(feats: Sequence[Tensor], rois: Tensor, strides: Sequence[int],
                      out_size: int = 7, sample_num: int = 2) -> Tensor:
    """``AuxAllLevelRoIExtractor.forward`` (all_level_auxiliary.py): (K * L, C, S, S) with
    ``roi_feats[i::num_levels] = roi_layers[i](feats[i], rois)``."""
    levels = len(feats)
    out = feats[0].new_zeros(rois.size(0) * levels, feats[0].size(1), out_size, out_size)
    for i, (f, s) in enumerate(zip(feats, strides)):
        out[i::levels] = roi_align_v0(f, rois, out_size, 1.0 / s, sample_num)
    return out


# ----------------------------------------------------------------------------- CS losses
def shared_fc_head(x: Tensor, p: Params, num_fcs: int = 2) -> tuple[Tensor, Tensor]:
    """``AuxiliaryConvFCBBoxHead.forward`` for ``AuxiliarySharedFCBBoxHead``: flatten,
    ``relu(shared_fcs[i](x))``, then ``fc_cls`` and ``fc_reg``."""
    x = x.view(x.size(0), -1)
    for i in range(num_fcs):
        x = F.relu(F.linear(x, p[f"shared_fcs.{i}.weight"], p[f"shared_fcs.{i}.bias"]))
    return (F.linear(x, p["fc_cls.weight"], p["fc_cls.bias"]),
            F.linear(x, p["fc_reg.weight"], p["fc_reg.bias"]))


def weighted_cross_entropy(pred: Tensor, label: Tensor, weight: Tensor) -> Tensor:
    """losses.py ``weighted_cross_entropy`` (reduce): ``sum(ce * weight) / max(#(weight > 0),
    1)``."""
    avg_factor = max(float((weight > 0).sum()), 1.0)
    return (F.cross_entropy(pred, label, reduction="none") * weight).sum() / avg_factor


def weighted_smoothl1(pred: Tensor, target: Tensor, weight: Tensor, avg_factor: float,
                      beta: float = 1.0) -> Tensor:
    """losses.py ``weighted_smoothl1`` / ``smooth_l1_loss``: ``0.5 d^2 / beta`` below beta,
    ``d - 0.5 beta`` above, weighted, summed, divided by ``avg_factor``."""
    diff = (pred - target).abs()
    loss = torch.where(diff < beta, 0.5 * diff * diff / beta, diff - 0.5 * beta)
    return (loss * weight).sum() / avg_factor


def aux_level_losses(cls_score: Tensor, bbox_pred: Tensor, labels: Tensor,
                     label_weights: Tensor, bbox_targets: Tensor, bbox_weights: Tensor,
                     alpha: float = 0.25, num_level: int = 4) -> dict[str, Tensor]:
    """``AuxiliaryBBoxHead.loss`` (bbox_head_auxiliary.py): for level i, rows ``i::num_level``;
    ``loss_cls_level{i} = weighted_cross_entropy(...) * alpha`` and ``loss_reg_level{i} =
    weighted_smoothl1(..., avg_factor=bbox_targets.size(0)) * alpha`` (smooth L1, beta 1).

    ``bbox_targets`` / ``bbox_weights`` in v0's layout: (K, 4 * classes) for class-specific
    regression, nonzero weights only in the 4 columns of the RoI's class (``bbox_target`` with
    ``reg_classes``), or (K, 4) class-agnostic.
    """
    losses = {}
    for i in range(num_level):
        losses[f"loss_cls_level{i}"] = weighted_cross_entropy(
            cls_score[i::num_level], labels, label_weights) * alpha
        losses[f"loss_reg_level{i}"] = weighted_smoothl1(
            bbox_pred[i::num_level], bbox_targets, bbox_weights,
            avg_factor=bbox_targets.size(0)) * alpha
    return losses
