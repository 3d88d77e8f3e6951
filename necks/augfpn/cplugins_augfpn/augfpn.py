"""AugFPN neck: FPN with Residual Feature Augmentation (Guo et al., CVPR 2020).

Residual Feature Augmentation (RFA) adds to the lateral of the top pyramid level a residual made
from ratio-invariant adaptive pooling of the top backbone feature ``C`` (N, Cin, h, w)::

    p_j = adaptive_avg_pool(C, (max(1, int(h * r_j)), max(1, int(w * r_j))))
    f_j = up(conv_j(p_j))                                    # (N, out, h, w), j < k ratios
    s   = sigmoid(weight_conv(relu(fuse_conv(cat_j f_j))))   # (N, k, h, w)
    rfa = sum_j s[:, j] * f_j                                # (N, out, h, w)

``up`` is bilinear upsampling to (h, w) with ``align_corners=True``. Pooling, 1x1 convs and
upsampling are all linear, which :class:`ResidualFeatureAugmentation` exploits (same result as the
literal code, see ``benchmarks/reference_rfa.py``):

* the poolings of all ratios are one pass over ``C``: a matrix product with the stacked
  adaptive-averaging matrices along H, then one along W; each ratio's own block of the
  resulting (sum_j hj, sum_j wj) grid is gathered with one ``index_select``;
* the 1x1 fusion conv commutes with upsampling, so ``fuse_conv(cat_j f_j)`` is computed as
  ``sum_j up(W_fuse_j @ conv_j(p_j)) + b`` at the pooled resolution (118 positions at 25x38),
  and the sum over ratios of the upsampled terms is a single matrix product;
* upsampling is two matrix products with bilinear interpolation matrices.

The averaging / interpolation matrices depend only on (h, w, ratios); they are built once per
feature size, device and dtype and cached (LRU). Only the weighted sum, the 3x3 attention conv
and the per-ratio upsampled features run at full resolution, as they must.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from numbers import Real
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.necks import FPN
from torch import Tensor

__all__ = ["AugFPN", "ResidualFeatureAugmentation"]

#: mmdet FPN's default initialisation; applies to the RFA convs (plain ``nn.Conv2d``) as well.
_XAVIER_INIT = dict(type="Xavier", layer="Conv2d", distribution="uniform")
_NEAREST = dict(mode="nearest")
_EXTRA_CONVS = ("on_input", "on_lateral", "on_output")


def adaptive_avg_pool_matrix(n_in: int, n_out: int) -> Tensor:
    """(n_out, n_in) float64 matrix ``M`` with ``adaptive_avg_pool1d(x, n_out) == x @ M.T``."""
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    for i in range(n_out):
        start, end = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)
        m[i, start:end] = 1.0 / (end - start)
    return m


def bilinear_matrix(n_in: int, n_out: int) -> Tensor:
    """(n_out, n_in) float64 matrix of 1-D linear interpolation with ``align_corners=True``.

    Same index / weight rule as torch's CPU ``upsample_bilinear2d``.
    """
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    if n_in == n_out:
        return m.fill_diagonal_(1.0)
    scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    for i in range(n_out):
        src = scale * i
        i0 = min(int(src), n_in - 1)
        lam = min(max(src - i0, 0.0), 1.0)
        i1 = i0 + 1 if i0 < n_in - 1 else i0
        m[i, i0] += 1.0 - lam
        m[i, i1] += lam
    return m


class _Operators(NamedTuple):
    """Linear operators of RFA for one (h, w) feature and k ratios; Ht, Wt = sum_j hj, wj."""

    pool_h: Tensor  # (Ht, h): adaptive averaging along H of every ratio, stacked (left factor)
    pool_h_t: Tensor  # (h, Ht): its transpose, for the backward
    pool_w: Tensor  # (w, Wt): adaptive averaging along W of every ratio (right factor)
    cells: Tensor  # (L,) int64: index in the (Ht, Wt) grid of each ratio's own pooled cells
    up_h: list[Tensor]  # (h, hj) per ratio: bilinear, align_corners=True (left factor)
    up_h_t: list[Tensor]  # (hj, h)
    up_w: list[Tensor]  # (wj, w) per ratio: same along W (right factor)
    up_w_all: Tensor  # (Wt, w): the up_w stacked, to upsample-and-sum every ratio at once
    sizes: list[tuple[int, int]]  # (hj, wj); L = sum_j hj * wj


class _LeftMatmul(torch.autograd.Function):
    """``m @ x`` for a constant (p, q) matrix ``m`` and a (B, q, r) batch ``x``.

    Backward is ``m.T @ grad``, the same broadcast kernel as the forward: autograd's own
    backward of a broadcast ``matmul`` takes a slow per-matrix path on CPU.
    """

    @staticmethod
    def forward(ctx, m: Tensor, m_t: Tensor, x: Tensor) -> Tensor:
        ctx.save_for_backward(m_t)
        return torch.matmul(m, x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, None, Tensor]:
        (m_t,) = ctx.saved_tensors
        return None, None, torch.matmul(m_t.to(grad.dtype), grad.contiguous())


class ResidualFeatureAugmentation(nn.Module):
    """Residual Feature Augmentation branch of AugFPN (vectorised, see module docstring).

    Args:
        in_channels: channels ``Cin`` of the backbone feature it reads.
        out_channels: channels of the FPN laterals (of the residual it returns).
        pool_ratios: adaptive pooling ratios ``r_j``; pooled size ``max(1, int(h * r_j))``.

    Parameters (as in the public code): ``pool_convs[j]`` 1x1 Cin -> out, ``fuse_conv`` 1x1
    k*out -> out, ``weight_conv`` 3x3 out -> k, for k ratios.
    """

    #: how many feature sizes keep their operators cached (LRU)
    cache_size = 32

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        pool_ratios: Sequence[float] = (0.1, 0.2, 0.3),
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.pool_ratios = tuple(float(r) for r in pool_ratios)
        k = len(self.pool_ratios)
        self.pool_convs = nn.ModuleList(
            [nn.Conv2d(in_channels, out_channels, 1) for _ in range(k)]
        )
        self.fuse_conv = nn.Conv2d(out_channels * k, out_channels, 1)
        self.weight_conv = nn.Conv2d(out_channels, k, 3, padding=1)
        self._operators: OrderedDict[tuple, _Operators] = OrderedDict()

    def pooled_sizes(self, h: int, w: int) -> list[tuple[int, int]]:
        """Pooled (hj, wj) per ratio for an (h, w) feature, as the public code computes them."""
        return [(max(1, int(h * r)), max(1, int(w * r))) for r in self.pool_ratios]

    @torch.no_grad()
    def zero_residual_(self) -> ResidualFeatureAugmentation:
        """Zero ``pool_convs`` in place: every ``f_j`` and so the residual becomes exactly 0.

        AugFPN then computes exactly FPN; ``pool_convs`` still receive gradients (a zero-init
        residual, e.g. to fine-tune from an FPN checkpoint).
        """
        for conv in self.pool_convs:
            conv.weight.zero_()
            conv.bias.zero_()
        return self

    def operators(self, h: int, w: int, device: torch.device, dtype: torch.dtype) -> _Operators:
        """The (cached) pooling / upsampling matrices for an (h, w) feature."""
        key = (h, w, device, dtype)
        ops = self._operators.get(key)
        if ops is not None:
            self._operators.move_to_end(key)
            return ops
        sizes = self.pooled_sizes(h, w)

        def cast(m: Tensor) -> Tensor:
            return m.to(device=device, dtype=dtype).contiguous()

        hs, ws = [s[0] for s in sizes], [s[1] for s in sizes]
        pool_h = torch.cat([adaptive_avg_pool_matrix(h, hj) for hj in hs])
        up_h = [bilinear_matrix(hj, h) for hj in hs]
        up_w = [bilinear_matrix(wj, w).t() for wj in ws]
        cells = [
            torch.arange(sum(hs[:j]), sum(hs[: j + 1]))[:, None] * sum(ws)
            + torch.arange(sum(ws[:j]), sum(ws[: j + 1]))[None, :]
            for j in range(len(sizes))
        ]
        ops = _Operators(
            pool_h=cast(pool_h),
            pool_h_t=cast(pool_h.t()),
            pool_w=cast(torch.cat([adaptive_avg_pool_matrix(w, wj) for wj in ws]).t()),
            cells=torch.cat([c.flatten() for c in cells]).to(device),
            up_h=[cast(m) for m in up_h],
            up_h_t=[cast(m.t()) for m in up_h],
            up_w=[cast(m) for m in up_w],
            up_w_all=cast(torch.cat(up_w)),
            sizes=sizes,
        )
        self._operators[key] = ops
        while len(self._operators) > self.cache_size:
            self._operators.popitem(last=False)
        return ops

    def forward(self, x: Tensor) -> Tensor:
        """(N, Cin, h, w) backbone feature -> (N, out, h, w) residual for its lateral."""
        n, c, h, w = x.shape
        co, k = self.out_channels, len(self.pool_ratios)
        ops = self.operators(h, w, x.device, x.dtype)

        # 1. every pooling in one pass over x: along H -> (N*C, Ht, w), along W -> (Ht, Wt) grid
        p = _LeftMatmul.apply(ops.pool_h, ops.pool_h_t, x.reshape(n * c, h, w))
        p = p.view(-1, w).mm(ops.pool_w).view(n, c, -1)
        # each ratio's own (hj, wj) block of the grid, as tokens (N, hj*wj, C) (row-major)
        tokens = p.index_select(2, ops.cells).transpose(1, 2)
        tokens = tokens.split([hj * wj for hj, wj in ops.sizes], dim=1)

        fuse_ws = self.fuse_conv.weight.view(co, k * co).split(co, dim=1)  # W_fuse_j (out, out)
        feats: list[Tensor] = []  # f_j (N, out, h, w)
        fused_h: list[Tensor] = []  # up_h(g_j), (N*out*h, wj)
        for j, conv in enumerate(self.pool_convs):
            hj, wj = ops.sizes[j]
            # 2. at the pooled resolution: y_j = conv_j(p_j), g_j = W_fuse_j y_j (+ b once)
            y = F.linear(tokens[j], conv.weight.view(co, c), conv.bias)  # (N, hj*wj, out)
            g = F.linear(y, fuse_ws[j], self.fuse_conv.bias if j == 0 else None)
            # 3. upsample [y_j, g_j] along H -> (N, 2*out, h, wj); y_j also along W -> f_j
            yg = torch.cat([y, g], 2).view(n, hj, wj * 2 * co)
            z = _LeftMatmul.apply(ops.up_h[j], ops.up_h_t[j], yg)
            z_y, z_g = z.view(n, h, wj, 2 * co).permute(0, 3, 1, 2).split(co, dim=1)
            feats.append(z_y.reshape(n * co * h, wj).mm(ops.up_w[j]).view(n, co, h, w))
            fused_h.append(z_g.reshape(n * co * h, wj))
        # 4. fuse_conv(cat_j f_j) == sum_j up(g_j) + b: one product sums over the ratios
        fused = torch.cat(fused_h, dim=1).mm(ops.up_w_all).view(n, co, h, w)

        # 5. attention weights and weighted sum at full resolution
        weights = torch.sigmoid(self.weight_conv(F.relu(fused)))  # (N, k, h, w)
        out = weights[:, :1] * feats[0]
        for j in range(1, k):
            out = out + weights[:, j : j + 1] * feats[j]
        return out


class AugFPN(FPN):
    """FPN with Residual Feature Augmentation on the top used level (AugFPN, CVPR 2020).

    Same arguments, parameters (``lateral_convs``, ``fpn_convs``) and outputs as
    :class:`mmdet.models.necks.FPN`, so an FPN state_dict loads into it (``strict=False``: only
    the ``rfa.*`` keys are missing). Added: ``pool_ratios`` and the branch ``rfa``
    (:class:`ResidualFeatureAugmentation`, plain ``nn.Conv2d`` like the public code: no
    ``conv_cfg`` / ``norm_cfg`` / ``act_cfg``).

    "Top" level: RFA reads backbone level ``backbone_end_level - 1`` (``end_level`` itself when
    it is given, else the last input) and its residual is added to that level's lateral, the
    start of the top-down path. RFA exists to give the top pyramid level, which receives no
    top-down signal, context from coarser scales; with ``end_level`` set the levels above it are
    not part of the pyramid, so the top of the pyramid is ``end_level``, not ``inputs[-1]``.

    Extra levels (``num_outs`` above the used levels): max pooling without
    ``add_extra_convs``, as the authors' two-stage ``HighFPN``; with conv extra levels, as their
    ``HighFPNRetinanet`` (RetinaNet, FCOS), the first extra level (P6) is the conv of its source
    plus the global average of the RFA residual, (N, out, 1, 1) broadcast, and the levels above
    are built on that P6. The outputs equal the authors' necks term by term
    (``tests/test_authors_reference.py``).

    Args:
        in_channels: channels of each backbone level, e.g. ``[256, 512, 1024, 2048]``.
        out_channels: channels of every output level.
        num_outs: number of output levels (>= number of used levels; exactly that number
            when ``end_level`` is not the last level).
        pool_ratios: RFA adaptive pooling ratios, each in (0, 1].
        Others: as :class:`mmdet.models.necks.FPN` (``init_cfg`` defaults to its Xavier
            uniform init, which also covers the RFA convs).
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int,
        num_outs: int,
        start_level: int = 0,
        end_level: int = -1,
        add_extra_convs: bool | str = False,
        relu_before_extra_convs: bool = False,
        no_norm_on_lateral: bool = False,
        conv_cfg: dict | None = None,
        norm_cfg: dict | None = None,
        act_cfg: dict | None = None,
        upsample_cfg: dict = _NEAREST,
        init_cfg: dict | list[dict] | None = _XAVIER_INIT,
        pool_ratios: Sequence[float] = (0.1, 0.2, 0.3),
    ) -> None:
        in_channels, pool_ratios = _validate(
            in_channels, out_channels, num_outs, start_level, end_level, add_extra_convs,
            pool_ratios,
        )
        super().__init__(
            in_channels=in_channels,
            out_channels=out_channels,
            num_outs=num_outs,
            start_level=start_level,
            end_level=end_level,
            add_extra_convs=add_extra_convs,
            relu_before_extra_convs=relu_before_extra_convs,
            no_norm_on_lateral=no_norm_on_lateral,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg,
            upsample_cfg=dict(upsample_cfg),
            init_cfg=init_cfg,
        )
        self.pool_ratios = pool_ratios
        self.rfa = ResidualFeatureAugmentation(
            in_channels[self.backbone_end_level - 1], out_channels, pool_ratios
        )

    def forward(self, inputs: Sequence[Tensor]) -> tuple[Tensor, ...]:
        """Backbone levels (N, in_channels[i], H_i, W_i) -> tuple of num_outs (N, out, h, w)."""
        return self._forward_impl(inputs, keep_laterals=False)[0]

    def forward_with_laterals(
        self, inputs: Sequence[Tensor]
    ) -> tuple[tuple[Tensor, ...], list[Tensor]]:
        """Like :meth:`forward`, plus the laterals before the top-down summation.

        Returns:
            ``(outs, laterals)``: ``outs`` as :meth:`forward`; ``laterals[i]``
            (N, out, H_{start_level+i}, W_{start_level+i}) is ``lateral_convs[i]`` of its level,
            all of them before the RFA residual is added to the top one (the authors'
            ``raw_laternals``: what Consistent Supervision supervises).
        """
        return self._forward_impl(inputs, keep_laterals=True)

    def _forward_impl(
        self, inputs: Sequence[Tensor], keep_laterals: bool
    ) -> tuple[tuple[Tensor, ...], list[Tensor]]:
        """Single code path of :meth:`forward` / :meth:`forward_with_laterals` (FPN's forward).

        Without ``keep_laterals`` the top-down sums run in place, as in mmdet's FPN (no new
        full-resolution tensors), and the returned laterals list is empty.
        """
        if len(inputs) != len(self.in_channels):
            raise ValueError(
                f"AugFPN expects one feature map per in_channels entry "
                f"(len(in_channels)={len(self.in_channels)}), got {len(inputs)} feature maps"
            )
        laterals = [
            lateral_conv(inputs[i + self.start_level])
            for i, lateral_conv in enumerate(self.lateral_convs)
        ]
        top = self.backbone_end_level - 1
        # kept laterals, taken before the residual is added to the top one (the authors'
        # ``raw_laternals``); the code below rebinds entries, never mutates them
        pre_fusion = list(laterals) if keep_laterals else []
        residual = self.rfa(inputs[top])
        laterals[-1] = laterals[-1] + residual

        # top-down path (as mmdet FPN)
        used_backbone_levels = len(laterals)
        for i in range(used_backbone_levels - 1, 0, -1):
            if "scale_factor" in self.upsample_cfg:
                upsampled = F.interpolate(laterals[i], **self.upsample_cfg)
            else:
                upsampled = F.interpolate(laterals[i], size=laterals[i - 1].shape[2:],
                                          **self.upsample_cfg)
            if keep_laterals:
                laterals[i - 1] = laterals[i - 1] + upsampled
            else:
                laterals[i - 1] += upsampled

        outs = [self.fpn_convs[i](laterals[i]) for i in range(used_backbone_levels)]
        if self.num_outs > len(outs):
            if not self.add_extra_convs:
                for _ in range(self.num_outs - used_backbone_levels):
                    outs.append(F.max_pool2d(outs[-1], 1, stride=2))
            else:
                if self.add_extra_convs == "on_input":
                    extra_source = inputs[top]
                elif self.add_extra_convs == "on_lateral":
                    extra_source = laterals[-1]
                else:  # 'on_output'
                    extra_source = outs[-1]
                # the authors' HighFPNRetinanet: the first extra level gets the global average
                # of the RFA residual (``pool_noupsample_fusion``); the next ones are built on it
                outs.append(self.fpn_convs[used_backbone_levels](extra_source)
                            + F.adaptive_avg_pool2d(residual, (1, 1)))
                for i in range(used_backbone_levels + 1, self.num_outs):
                    source = outs[-1]
                    if self.relu_before_extra_convs:
                        source = F.relu(source)
                    outs.append(self.fpn_convs[i](source))
        return tuple(outs), pre_fusion


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _validate(
    in_channels: Sequence[int],
    out_channels: int,
    num_outs: int,
    start_level: int,
    end_level: int,
    add_extra_convs: bool | str,
    pool_ratios: Sequence[float],
) -> tuple[list[int], tuple[float, ...]]:
    """Check AugFPN's arguments; raise naming the argument and what is allowed."""
    if (
        not isinstance(in_channels, (list, tuple))
        or not in_channels
        or not all(_is_int(c) and c > 0 for c in in_channels)
    ):
        raise ValueError(
            f"in_channels must be a non-empty list of positive ints, got {in_channels!r}"
        )
    if not _is_int(out_channels) or out_channels <= 0:
        raise ValueError(f"out_channels must be a positive int, got {out_channels!r}")
    num_ins = len(in_channels)
    if not _is_int(start_level) or not 0 <= start_level < num_ins:
        raise ValueError(
            f"start_level must be an int in [0, len(in_channels)={num_ins}), got {start_level!r}"
        )
    if not _is_int(end_level) or not (end_level == -1 or start_level <= end_level < num_ins):
        raise ValueError(
            f"end_level must be -1 or an int in [start_level={start_level}, "
            f"len(in_channels)={num_ins}), got {end_level!r}"
        )
    last = end_level in (-1, num_ins - 1)
    used = (num_ins if last else end_level + 1) - start_level
    if not _is_int(num_outs) or num_outs < used or (not last and num_outs != used):
        allowed = f">= {used}" if last else f"== {used} (end_level={end_level} allows no extra)"
        raise ValueError(
            f"num_outs must be an int {allowed}, the number of used input levels; got {num_outs!r}"
        )
    if not isinstance(add_extra_convs, (bool, str)) or (
        isinstance(add_extra_convs, str) and add_extra_convs not in _EXTRA_CONVS
    ):
        raise ValueError(
            f"add_extra_convs must be a bool or one of {_EXTRA_CONVS}, got {add_extra_convs!r}"
        )
    if (
        isinstance(pool_ratios, (str, bytes))
        or not isinstance(pool_ratios, Sequence)
        or not pool_ratios
        or not all(isinstance(r, Real) and not isinstance(r, bool) and 0 < r <= 1
                   for r in pool_ratios)
    ):
        raise ValueError(
            f"pool_ratios must be a non-empty sequence of numbers in (0, 1], got {pool_ratios!r}"
        )
    return list(in_channels), tuple(float(r) for r in pool_ratios)
