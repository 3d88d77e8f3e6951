"""Literal Soft RoI Selection (AugFPN, Guo et al. CVPR 2020), for comparison.

``LiteralSRS`` follows the authors' public code line by line: one RoIAlign call per pyramid
level, the pooled features concatenated along channels, ``fuse_conv`` (1x1) -> ReLU ->
``weight_conv`` (3x3) -> sigmoid, and a python loop of weighted sums. It is the numerical
reference of ``cplugins_augfpn.soft_roi_extractor.SoftRoIExtractor`` (same parameters, see
:func:`copy_srs_weights`) and the baseline of its speed measurement. It pools with mmcv's
``RoIAlign`` (mmdet 3's convention); the authors' v0 RoIAlign and their SRS are restated in
``necks/augfpn/tests/authors_reference.py`` (``RoIAlignV0`` in the plugin).

Run ``python benchmarks/reference_srs.py [--device cuda] [--rois 1024] [--channels 256]`` to time
the literal extractor, ``SoftRoIExtractor`` and mmdet's ``SingleRoIExtractor`` (forward and
forward + backward; medians over repeats).
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


class LiteralSRS(nn.Module):
    """Soft RoI Selection as in the public AugFPN code (per-level pooling, concat, attention).

    Args:
        out_channels: channels ``C`` of every level.
        featmap_strides: stride of each level, finest first.
        output_size: RoI output size ``S``.
        sampling_ratio, aligned: mmcv ``RoIAlign`` arguments.
        attention_channels: hidden channels of the attention (default ``C``).

    Parameters: ``fuse_conv`` (1x1, L*C -> C'), ``weight_conv`` (3x3, C' -> L).
    """

    def __init__(
        self,
        out_channels: int,
        featmap_strides: Sequence[int],
        output_size: int = 7,
        sampling_ratio: int = 0,
        aligned: bool = True,
        attention_channels: int | None = None,
    ) -> None:
        super().__init__()
        from mmcv.ops import RoIAlign

        hidden = attention_channels or out_channels
        levels = len(featmap_strides)
        self.roi_layers = nn.ModuleList(
            [RoIAlign(output_size, spatial_scale=1.0 / s, sampling_ratio=sampling_ratio,
                      aligned=aligned) for s in featmap_strides]
        )
        self.fuse_conv = nn.Conv2d(out_channels * levels, hidden, 1)
        self.weight_conv = nn.Conv2d(hidden, levels, 3, padding=1)

    def forward(self, feats: Sequence[Tensor], rois: Tensor) -> Tensor:
        """``L`` maps (N, C, H_l, W_l), (K, 5) RoIs -> (K, C, S, S)."""
        roi_feats_list = [layer(f, rois) for layer, f in zip(self.roi_layers, feats)]
        concat = torch.cat(roi_feats_list, dim=1)
        attention = self.weight_conv(F.relu(self.fuse_conv(concat)))
        roi_feats = torch.zeros_like(roi_feats_list[0])
        for i, pooled in enumerate(roi_feats_list):
            roi_feats = roi_feats + torch.sigmoid(attention[:, i, None]) * pooled
        return roi_feats


@torch.no_grad()
def copy_srs_weights(src: nn.Module, dst: LiteralSRS) -> LiteralSRS:
    """Copy ``fuse_conv`` / ``weight_conv`` of a ``SoftRoIExtractor`` into ``dst``."""
    for name in ("fuse_conv", "weight_conv"):
        getattr(dst, name).weight.copy_(getattr(src, name).weight)
        getattr(dst, name).bias.copy_(getattr(src, name).bias)
    return dst


def random_rois(num: int, batch: int, height: int, width: int, seed: int = 0) -> Tensor:
    """(num, 5) RoIs inside an ``height`` x ``width`` image, sizes 8 px .. the image size."""
    g = torch.Generator().manual_seed(seed)
    size = 8 + torch.rand(num, 2, generator=g) ** 2 * (torch.tensor([width, height]) - 8)
    start = torch.rand(num, 2, generator=g) * (torch.tensor([width, height]) - size)
    index = torch.randint(0, batch, (num, 1), generator=g).float()
    return torch.cat([index, start, start + size], dim=1)


def _median_time(fn, repeats: int, sync) -> float:
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rois", type=int, default=512)
    parser.add_argument("--channels", type=int, default=128)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--image", type=int, nargs=2, default=(256, 320), metavar=("H", "W"))
    parser.add_argument("--sampling-ratio", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    # cplugins_augfpn imports cplugins first (its compat fixes must precede mmdet)
    from cplugins_augfpn.soft_roi_extractor import SoftRoIExtractor
    from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor

    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    strides = [4, 8, 16, 32]
    h, w = args.image
    c = args.channels
    layer = dict(type="RoIAlign", output_size=7, sampling_ratio=args.sampling_ratio)
    torch.manual_seed(0)
    soft = SoftRoIExtractor(layer, c, strides).to(device)
    soft.init_weights()
    literal = copy_srs_weights(
        soft, LiteralSRS(c, strides, sampling_ratio=args.sampling_ratio)).to(device)
    single = SingleRoIExtractor(layer, c, strides).to(device)
    feats = [torch.randn(args.batch, c, -(-h // s), -(-w // s), device=device,
                         requires_grad=True) for s in strides]
    rois = random_rois(args.rois, args.batch, h, w).to(device)
    print(f"device={device} threads={torch.get_num_threads()} rois={args.rois} channels={c} "
          f"batch={args.batch} image={h}x{w} sampling_ratio={args.sampling_ratio}; "
          f"median of {args.repeats}")
    for name, module in (("SingleRoIExtractor", single), ("LiteralSRS", literal),
                         ("SoftRoIExtractor", soft)):
        def forward(module=module):
            with torch.no_grad():
                module(feats, rois)

        def train_step(module=module):
            module(feats, rois).square().mean().backward()

        forward()
        train_step()
        fwd = _median_time(forward, args.repeats, sync)
        step = _median_time(train_step, args.repeats, sync)
        print(f"{name:20s} forward {fwd * 1e3:8.1f} ms   forward+backward {step * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
