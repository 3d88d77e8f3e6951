"""RoIAlign of every RoI on every pyramid level as one gather (``embedding_bag``).

mmcv's CPU RoIAlign walks NCHW maps one channel at a time (strided reads, one thread per call);
pooling ``K`` RoIs from ``L`` levels costs ``L`` such passes. Here the levels are laid out
channels-last in one table of rows ``(sum_l N * H_l * W_l, C)`` and each output bin is a
weighted sum of ``sampling_ratio**2 * 4`` rows (the 4 bilinear corners of each sample point):
one ``torch.nn.functional.embedding_bag(mode='sum', per_sample_weights=...)`` call pools all
``K * L * S * S`` bins, contiguous ``C``-vectors at a time, and the backward is the transposed
gather (taps sorted by table row, one more ``embedding_bag``). The sample positions, the
clamping and the zero for points outside ``[-1, H] x [-1, W]`` follow mmcv's ``roi_align``
kernel (``avg`` mode, fixed ``sampling_ratio > 0``) term by term, so outputs equal mmcv's up to
float rounding.

Output layout ``(K, S, S, L, C)``: a Soft RoI Selection 1x1 fusion over ``L * C`` channels is
then a plain matrix product on a free view.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["RoIAlignV0", "channels_last_table", "kernel_scale", "roi_align_levels"]


def kernel_scale(scale: float, dtype: torch.dtype) -> float:
    """``spatial_scale`` as mmcv's kernel uses it: a C float, then cast to the input dtype."""
    return float(torch.tensor(scale, dtype=torch.float32).to(dtype))


class _ChannelsLastTable(torch.autograd.Function):
    """Maps (N, C, H_l, W_l) -> one (sum_l N * H_l * W_l, C) table, and the gradient back.

    Each image's (C, H*W) <-> (H*W, C) transposition is a single 2-D transposed copy, which
    ATen runs blocked (cache-friendly); a 4-D ``permute(...).contiguous()`` of a 256-channel map
    is about 2.5x slower on the CPU, and the table needs no second copy for concatenation.
    """

    @staticmethod
    def forward(ctx, *feats: Tensor) -> Tensor:
        channels = feats[0].size(1)
        rows = sum(f.size(0) * f.size(2) * f.size(3) for f in feats)
        table = feats[0].new_empty(rows, channels)
        first = 0
        for feat in feats:
            area = feat.size(2) * feat.size(3)
            for image in feat:
                table[first:first + area].copy_(image.reshape(channels, area).t())
                first += area
        ctx.shapes = [f.shape for f in feats]
        return table

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor, ...]:
        grads, first = [], 0
        for batch, channels, h, w in ctx.shapes:
            area = h * w
            out = grad.new_empty(batch, channels, h, w)
            for image in out:
                image.view(channels, area).copy_(grad[first:first + area].t())
                first += area
            grads.append(out)
        return tuple(grads)


class _WeightedRowSums(torch.autograd.Function):
    """``out[b] = sum_t weight[b, t] * table[index[b, t]]`` and its gradient w.r.t. ``table``.

    Forward is ``embedding_bag(mode='sum')``. The backward is the transposed gather: taps are
    sorted by table row once (``argsort``), and each row of the gradient sums its taps' weighted
    output gradients with another ``embedding_bag`` (rows without taps get 0). On the CPU this is
    about 1.7x faster than ``embedding_bag``'s own dense backward (a scatter-add) at R50 shapes.
    No gradient for ``index`` / ``weight`` (mmcv's RoIAlign gives none for the RoIs either).
    """

    @staticmethod
    def forward(ctx, table: Tensor, index: Tensor, weight: Tensor) -> Tensor:
        ctx.save_for_backward(index, weight)
        ctx.rows = table.size(0)
        return F.embedding_bag(index, table, mode="sum", per_sample_weights=weight)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, None, None]:
        index, weight = ctx.saved_tensors
        taps = index.size(1)
        flat = index.reshape(-1)
        order = torch.argsort(flat)
        offsets = flat.new_zeros(ctx.rows + 1)
        torch.cumsum(torch.bincount(flat, minlength=ctx.rows), 0, out=offsets[1:])
        grad_table = F.embedding_bag(
            order // taps, grad.contiguous(), offsets, mode="sum",
            per_sample_weights=weight.reshape(-1)[order], include_last_offset=True)
        return grad_table, None, None


def channels_last_table(feats: Sequence[Tensor]) -> Tensor:
    """(sum_l N * H_l * W_l, C) rows of all maps, level-major then image, row-major pixels."""
    return _ChannelsLastTable.apply(*feats)


def _axis_samples(
    start: Tensor, extent: Tensor, bins: int, sampling_ratio: int, size: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Bilinear taps along one axis for ``bins * sampling_ratio`` sample points per RoI.

    Args:
        start, extent: (K,) RoI start and length in feature pixels.
        bins: output bins along the axis; size: feature map length along the axis.

    Returns:
        ``low, high`` (K, bins, sr) int64 indices and ``w_low, w_high`` (K, bins, sr) weights,
        zero for sample points mmcv drops (outside ``[-1, size]``).
    """
    bin_size = extent / bins
    grid = torch.arange(bins, dtype=start.dtype, device=start.device)
    steps = torch.arange(sampling_ratio, dtype=start.dtype, device=start.device) + 0.5
    # mmcv: start + p * bin_size + (i + .5) * bin_size / sampling_ratio
    coord = ((start[:, None] + grid[None] * bin_size[:, None])[:, :, None]
             + steps[None, None] * bin_size[:, None, None] / sampling_ratio)  # (K, bins, sr)
    inside = ((coord >= -1.0) & (coord <= size)).to(start.dtype)
    coord = coord.clamp(min=0.0)
    low = coord.long()
    top = low >= size - 1
    low = low.clamp(max=size - 1)
    high = torch.where(top, low, low + 1)
    frac = torch.where(top, torch.zeros_like(coord), coord - low.to(coord.dtype))
    return low, high, (1.0 - frac) * inside, frac * inside


def roi_align_levels(
    feats: Sequence[Tensor],
    rois: Tensor,
    spatial_scales: Sequence[float],
    output_size: tuple[int, int],
    sampling_ratio: int,
    aligned: bool = True,
    levels_first: bool = False,
    v0: bool = False,
) -> Tensor:
    """mmcv ``roi_align`` (avg mode) of every RoI on every level, by one gather.

    Args:
        feats: ``L`` maps (N, C, H_l, W_l), same N, C, dtype and device.
        rois: (K, 5) ``[batch_index, x1, y1, x2, y2]`` in image coordinates.
        spatial_scales: ``L`` scales (``1 / stride_l``).
        output_size: ``(S_h, S_w)``.
        sampling_ratio: sample points per bin along each axis (> 0).
        aligned: mmcv's ``aligned`` (pixel shift of -0.5).
        levels_first: lay the result out (K, L, S_h, S_w, C) instead.
        v0: mmdetection v0's RoIAlign instead (:class:`RoIAlignV0`; ``aligned`` must be
            False): the RoI ends at ``(x2 + 1, y2 + 1)`` and its extent is clamped at 0, not 1.

    Returns:
        (K, S_h, S_w, L, C) pooled features (``levels_first``: (K, L, S_h, S_w, C));
        differentiable w.r.t. ``feats``.
    """
    if sampling_ratio <= 0:
        raise ValueError(f"roi_align_levels needs a fixed sampling_ratio > 0, got "
                         f"{sampling_ratio} (adaptive sampling: use mmcv's RoIAlign)")
    if v0 and aligned:
        raise ValueError("roi_align_levels: v0=True is mmdetection v0's unaligned RoIAlign; "
                         "pass aligned=False")
    if len(feats) != len(spatial_scales):
        raise ValueError(f"roi_align_levels: {len(feats)} maps but {len(spatial_scales)} scales")
    out_h, out_w = output_size
    batch, channels = feats[0].shape[:2]
    k, levels, sr = rois.size(0), len(feats), sampling_ratio
    offset = 0.5 if aligned else 0.0
    batch_index = rois[:, 0].long()
    indices, weights, row_base = [], [], 0
    for feat, scale in zip(feats, spatial_scales):
        h, w = feat.shape[2:]
        box = rois[:, 1:] * kernel_scale(scale, rois.dtype) - offset  # (K, 4)
        if v0:  # v0 kernel: roi_end = (x2 + 1) * scale, extent max(end - start, 0)
            box = torch.cat([box[:, :2], (rois[:, 3:] + 1) * kernel_scale(scale, rois.dtype)],
                            dim=1)
        width, height = box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]
        if v0:
            width, height = width.clamp(min=0.0), height.clamp(min=0.0)
        elif not aligned:  # mmcv: legacy RoIs are at least 1 x 1
            width, height = width.clamp(min=1.0), height.clamp(min=1.0)
        y_lo, y_hi, wy_lo, wy_hi = _axis_samples(box[:, 1], height, out_h, sr, h)
        x_lo, x_hi, wx_lo, wx_hi = _axis_samples(box[:, 0], width, out_w, sr, w)
        rows_y = torch.stack([y_lo, y_lo, y_hi, y_hi], -1) * w  # (K, S_h, sr, 4) corners
        cols_x = torch.stack([x_lo, x_hi, x_lo, x_hi], -1)  # (K, S_w, sr, 4)
        wy = torch.stack([wy_lo, wy_lo, wy_hi, wy_hi], -1)
        wx = torch.stack([wx_lo, wx_hi, wx_lo, wx_hi], -1)
        base = (row_base + batch_index * (h * w))[:, None, None, None, None, None]
        # (K, S_h, S_w, sr_y, sr_x, 4): bin (i, j), sample (a, b), corner c
        index = base + rows_y[:, :, None, :, None, :] + cols_x[:, None, :, None, :, :]
        weight = wy[:, :, None, :, None, :] * wx[:, None, :, None, :, :] / (sr * sr)
        indices.append(index.reshape(k, out_h, out_w, sr * sr * 4))
        weights.append(weight.reshape(k, out_h, out_w, sr * sr * 4))
        row_base += batch * h * w
    table = channels_last_table(feats)
    taps, dim = sr * sr * 4, 1 if levels_first else 3
    pooled = _WeightedRowSums.apply(
        table, torch.stack(indices, dim).view(-1, taps),
        torch.stack(weights, dim).view(-1, taps).to(table.dtype).detach(),
    )  # (K * S_h * S_w * L, C), bags in the output's order
    if levels_first:
        return pooled.view(k, levels, out_h, out_w, channels)
    return pooled.view(k, out_h, out_w, levels, channels)


class RoIAlignV0(torch.nn.Module):
    """mmdetection v0's ``RoIAlign(out_size, spatial_scale, sample_num)``, the RoI layer of the
    AugFPN authors' configs (``dict(type='RoIAlign', out_size=7, sample_num=2)``).

    Against mmcv's ``RoIAlign``: the RoI spans ``[x1, x2 + 1] x [y1, y2 + 1]`` in image pixels
    (inclusive pixel ends, mmdet v0's box convention), its extent on the level is clamped at 0
    (mmcv ``aligned=False``: at 1), no half-pixel shift; the bilinear sampling is the same.
    Select it with ``roi_layer=dict(type='RoIAlignV0', output_size=7, sampling_ratio=2)`` in
    ``SoftRoIExtractor`` / ``AllLevelRoIExtractor`` (not in mmdet's own extractors). Computed
    by :func:`roi_align_levels` (any device; a fixed ``sampling_ratio > 0``).

    Args:
        output_size: ``S`` or ``(S_h, S_w)``.
        spatial_scale: ``1 / stride``.
        sampling_ratio: sample points per bin along each axis (v0's ``sample_num``), > 0.
    """

    #: attributes the extractors read from mmcv's RoIAlign
    aligned = False
    pool_mode = "avg"
    use_torchvision = False

    def __init__(self, output_size: int | tuple[int, int], spatial_scale: float,
                 sampling_ratio: int = 2) -> None:
        super().__init__()
        if isinstance(sampling_ratio, bool) or not isinstance(sampling_ratio, int) \
                or sampling_ratio <= 0:
            raise ValueError(f"RoIAlignV0: sampling_ratio must be an int > 0 (v0's sample_num "
                             f"of the configs), got {sampling_ratio!r}")
        size = (output_size, output_size) if isinstance(output_size, int) else output_size
        self.output_size = tuple(int(v) for v in size)
        self.spatial_scale = float(spatial_scale)
        self.sampling_ratio = sampling_ratio

    def forward(self, input: Tensor, rois: Tensor) -> Tensor:
        """(N, C, H, W) map and (K, 5) ``[b, x1, y1, x2, y2]`` RoIs -> (K, C, S_h, S_w)."""
        pooled = roi_align_levels([input], rois.type_as(input), [self.spatial_scale],
                                  self.output_size, self.sampling_ratio, aligned=False,
                                  levels_first=True, v0=True)  # (K, 1, S_h, S_w, C)
        return pooled[:, 0].permute(0, 3, 1, 2).contiguous()

    def extra_repr(self) -> str:
        return (f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
                f"sampling_ratio={self.sampling_ratio}")
