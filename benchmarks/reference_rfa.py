"""Literal Residual Feature Augmentation (AugFPN, Guo et al. CVPR 2020), for comparison.

``LiteralRFA`` follows the authors' public code line by line: a python loop over the pooling
ratios, one ``adaptive_avg_pool2d`` of the full backbone feature per ratio, the 1x1 fusion conv
applied at full resolution after upsampling, and a separate weighted sum. It is the numerical
reference for ``cplugins_augfpn.augfpn`` (tests) and the baseline of its speed measurement.

Plain torch only: importable without mmcv / mmdet. It covers the RFA branch (the residual);
the authors' whole necks (``HighFPN``, ``HighFPNRetinanet``: laterals, P6's global-average
residual, the laterals Consistent Supervision reads) are restated in
``necks/augfpn/tests/authors_reference.py`` and tested in ``test_authors_reference.py``.

Run ``python benchmarks/reference_rfa.py`` (with ``cplugins_augfpn`` importable) to time the
literal branch against the vectorised one and AugFPN against mmdet's FPN.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


class LiteralRFA(nn.Module):
    """Residual Feature Augmentation exactly as in the public AugFPN code.

    Args:
        in_channels: channels ``Cin`` of the top backbone feature.
        out_channels: channels of the FPN laterals.
        pool_ratios: adaptive pooling ratios (the paper's 0.1, 0.2, 0.3).

    Parameters have the same shapes as the vectorised branch: ``pool_convs[j]`` (1x1,
    Cin -> out), ``fuse_conv`` (1x1, k*out -> out), ``weight_conv`` (3x3, out -> k), k ratios.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        pool_ratios: Sequence[float] = (0.1, 0.2, 0.3),
    ) -> None:
        super().__init__()
        self.pool_ratios = tuple(float(r) for r in pool_ratios)
        k = len(self.pool_ratios)
        self.pool_convs = nn.ModuleList(
            [nn.Conv2d(in_channels, out_channels, 1) for _ in range(k)]
        )
        self.fuse_conv = nn.Conv2d(out_channels * k, out_channels, 1)
        self.weight_conv = nn.Conv2d(out_channels, k, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """(N, Cin, h, w) top backbone feature -> (N, out, h, w) residual for its lateral."""
        h, w = x.size(2), x.size(3)
        feats = [
            F.interpolate(
                self.pool_convs[j](
                    F.adaptive_avg_pool2d(
                        x, output_size=(max(1, int(h * ratio)), max(1, int(w * ratio)))
                    )
                ),
                size=(h, w),
                mode="bilinear",
                align_corners=True,
            )
            for j, ratio in enumerate(self.pool_ratios)
        ]
        cat = torch.cat(feats, dim=1)
        weights = torch.sigmoid(self.weight_conv(F.relu(self.fuse_conv(cat))))
        out = 0
        for j in range(len(self.pool_ratios)):
            out = out + weights[:, j : j + 1] * feats[j]
        return out


@torch.no_grad()
def copy_rfa_weights(src: nn.Module, dst: LiteralRFA) -> LiteralRFA:
    """Copy the RFA parameters of ``src`` into ``dst`` and return ``dst``.

    ``src`` is an ``AugFPN`` (its ``rfa`` branch is used) or the branch itself; any module
    with ``pool_convs`` / ``fuse_conv`` / ``weight_conv`` of matching shapes works.
    """
    rfa = getattr(src, "rfa", src)
    if len(rfa.pool_convs) != len(dst.pool_convs):
        raise ValueError(
            f"pool_ratios differ: source has {len(rfa.pool_convs)} ratios, "
            f"destination {len(dst.pool_convs)}"
        )
    pairs = list(zip(rfa.pool_convs, dst.pool_convs)) + [
        (rfa.fuse_conv, dst.fuse_conv),
        (rfa.weight_conv, dst.weight_conv),
    ]
    for s, d in pairs:
        d.weight.copy_(s.weight)
        d.bias.copy_(s.bias)
    return dst


def _interleaved_ms(fns: dict, rounds: int, warmup: int = 3) -> dict:
    """Median and min milliseconds per callable, timed in interleaved rounds (fair under drift)."""
    import statistics
    import time

    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(1e3 * (time.perf_counter() - t0))
    return {name: (statistics.median(t), min(t)) for name, t in times.items()}


def main(threads: int = 2, rounds: int = 20, neck_rounds: int = 3) -> None:
    """Time forward+backward: literal vs vectorised RFA, and AugFPN vs FPN (R50 shapes)."""
    import copy

    import cplugins  # noqa: F401  (arms the torchvision fix before mmdet imports it)

    # isort: split
    from cplugins_augfpn.augfpn import AugFPN
    from mmdet.models.necks import FPN

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    chans, sizes = [256, 512, 1024, 2048], [(200, 304), (100, 152), (50, 76), (25, 38)]
    inputs = [torch.randn(2, c, h, w, requires_grad=True) for c, (h, w) in zip(chans, sizes)]
    aug = AugFPN(chans, 256, 5)
    fpn = FPN(chans, 256, 5)
    fpn.load_state_dict(aug.state_dict(), strict=False)
    lit = copy_rfa_weights(aug, LiteralRFA(2048, 256))
    aug_lit = copy.deepcopy(aug)
    aug_lit.rfa = lit  # the same neck with the literal branch

    def step(module, x):
        def run():
            out = module(x)
            out = out if isinstance(out, Tensor) else sum(o.sum() for o in out)
            out.sum().backward()

        return run

    def report(title: str, res: dict, base: str) -> None:
        print(title)
        for stat, i in (("median", 0), ("min", 1)):
            cells = "   ".join(
                f"{name} {v[i]:8.1f} ms ({v[i] / res[base][i]:.3f})" for name, v in res.items()
            )
            print(f"  {stat:6s} {cells}")

    top = inputs[-1]
    res = _interleaved_ms({"literal": step(lit, top), "vectorised": step(aug.rfa, top)}, rounds)
    report(f"threads={threads}: RFA fwd+bwd, top (2, 2048, 25, 38) -> 256 (time / literal)",
           res, "literal")
    necks = {"FPN": step(fpn, inputs), "AugFPN": step(aug, inputs),
             "AugFPN-literal-RFA": step(aug_lit, inputs)}
    res = _interleaved_ms(necks, neck_rounds, warmup=1)
    report(f"threads={threads}: neck fwd+bwd, R50 (2, C_i, 200x304 .. 25x38), 5 outs "
           "(time / FPN)", res, "FPN")


if __name__ == "__main__":
    import sys

    main(*(int(a) for a in sys.argv[1:4]))
