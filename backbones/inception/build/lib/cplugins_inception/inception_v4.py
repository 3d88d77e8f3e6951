"""Inception-v4 (Szegedy et al., AAAI 2017, arXiv:1602.07261), as an mmpretrain / mmdet backbone.

Block layouts follow the paper (figures 3-9) as implemented in Cadene's
``pretrainedmodels`` / timm ``inception_v4`` (42,679,816 parameters with the
1000-class classifier; the backbone here has the same parameters minus that classifier).
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from functools import partial

import torch
from torch import Tensor, nn

from cplugins_inception.layers import (
    DEFAULT_INIT_CFG,
    DEFAULT_NORM_CFG,
    InceptionBackbone,
    avg_pool_3x3,
    conv_bn_relu,
    max_pool_3x3,
)


class Mixed3a(nn.Module):
    """Stem split: 3x3/2 max pool || 3x3/2 conv. (N, 64, H, W) -> (N, 160, H/2, W/2)."""

    def __init__(self, norm_cfg: dict | None):
        super().__init__()
        self.pool = max_pool_3x3(stride=2)
        self.conv = conv_bn_relu(64, 96, 3, stride=2, norm_cfg=norm_cfg)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.pool(x), self.conv(x)], 1)


class Mixed4a(nn.Module):
    """Stem: 1x1-3x3 || 1x1-1x7-7x1-3x3. (N, 160, H, W) -> (N, 192, H, W)."""

    def __init__(self, norm_cfg: dict | None):
        super().__init__()
        conv = partial(conv_bn_relu, norm_cfg=norm_cfg)
        self.branch0 = nn.Sequential(conv(160, 64, 1), conv(64, 96, 3))
        self.branch1 = nn.Sequential(conv(160, 64, 1), conv(64, 64, (1, 7)),
                                     conv(64, 64, (7, 1)), conv(64, 96, 3))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch0(x), self.branch1(x)], 1)


class Mixed5a(nn.Module):
    """Stem split: 3x3/2 conv || 3x3/2 max pool. (N, 192, H, W) -> (N, 384, H/2, W/2)."""

    def __init__(self, norm_cfg: dict | None):
        super().__init__()
        self.conv = conv_bn_relu(192, 192, 3, stride=2, norm_cfg=norm_cfg)
        self.pool = max_pool_3x3(stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.conv(x), self.pool(x)], 1)


class InceptionA(nn.Module):
    """35x35 grid block (fig. 4). (N, 384, H, W) -> (N, 384, H, W)."""

    def __init__(self, norm_cfg: dict | None):
        super().__init__()
        conv = partial(conv_bn_relu, norm_cfg=norm_cfg)
        self.branch0 = conv(384, 96, 1)
        self.branch1 = nn.Sequential(conv(384, 64, 1), conv(64, 96, 3))
        self.branch2 = nn.Sequential(conv(384, 64, 1), conv(64, 96, 3), conv(96, 96, 3))
        self.branch3 = nn.Sequential(avg_pool_3x3(count_include_pad=False), conv(384, 96, 1))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], 1)


class ReductionA(nn.Module):
    """35 -> 17 reduction (fig. 7; k, l, m, n = 192, 224, 256, 384).

    (N, 384, H, W) -> (N, 1024, H/2, W/2).
    """

    def __init__(self, norm_cfg: dict | None):
        super().__init__()
        conv = partial(conv_bn_relu, norm_cfg=norm_cfg)
        self.branch0 = conv(384, 384, 3, stride=2)
        self.branch1 = nn.Sequential(conv(384, 192, 1), conv(192, 224, 3),
                                     conv(224, 256, 3, stride=2))
        self.branch2 = max_pool_3x3(stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x)], 1)


class InceptionB(nn.Module):
    """17x17 grid block (fig. 5). (N, 1024, H, W) -> (N, 1024, H, W)."""

    def __init__(self, norm_cfg: dict | None):
        super().__init__()
        conv = partial(conv_bn_relu, norm_cfg=norm_cfg)
        self.branch0 = conv(1024, 384, 1)
        self.branch1 = nn.Sequential(conv(1024, 192, 1), conv(192, 224, (1, 7)),
                                     conv(224, 256, (7, 1)))
        self.branch2 = nn.Sequential(conv(1024, 192, 1), conv(192, 192, (7, 1)),
                                     conv(192, 224, (1, 7)), conv(224, 224, (7, 1)),
                                     conv(224, 256, (1, 7)))
        self.branch3 = nn.Sequential(avg_pool_3x3(count_include_pad=False), conv(1024, 128, 1))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], 1)


class ReductionB(nn.Module):
    """17 -> 8 reduction (fig. 8). (N, 1024, H, W) -> (N, 1536, H/2, W/2)."""

    def __init__(self, norm_cfg: dict | None):
        super().__init__()
        conv = partial(conv_bn_relu, norm_cfg=norm_cfg)
        self.branch0 = nn.Sequential(conv(1024, 192, 1), conv(192, 192, 3, stride=2))
        self.branch1 = nn.Sequential(conv(1024, 256, 1), conv(256, 256, (1, 7)),
                                     conv(256, 320, (7, 1)), conv(320, 320, 3, stride=2))
        self.branch2 = max_pool_3x3(stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x)], 1)


class InceptionC(nn.Module):
    """8x8 grid block (fig. 6). (N, 1536, H, W) -> (N, 1536, H, W)."""

    def __init__(self, norm_cfg: dict | None):
        super().__init__()
        conv = partial(conv_bn_relu, norm_cfg=norm_cfg)
        self.branch0 = conv(1536, 256, 1)
        self.branch1 = conv(1536, 384, 1)
        self.branch1_1x3 = conv(384, 256, (1, 3))
        self.branch1_3x1 = conv(384, 256, (3, 1))
        self.branch2 = nn.Sequential(conv(1536, 384, 1), conv(384, 448, (3, 1)),
                                     conv(448, 512, (1, 3)))
        self.branch2_1x3 = conv(512, 256, (1, 3))
        self.branch2_3x1 = conv(512, 256, (3, 1))
        self.branch3 = nn.Sequential(avg_pool_3x3(count_include_pad=False), conv(1536, 256, 1))

    def forward(self, x: Tensor) -> Tensor:
        x1 = self.branch1(x)
        x2 = self.branch2(x)
        return torch.cat([self.branch0(x), self.branch1_1x3(x1), self.branch1_3x1(x1),
                          self.branch2_1x3(x2), self.branch2_3x1(x2), self.branch3(x)], 1)


class InceptionV4(InceptionBackbone):
    """Inception-v4 backbone (Szegedy et al. 2016), for mmpretrain and mmdet.

    Stages (``out_indices`` refer to these; each starts with its downsampling):

    ===== =============================================== ======== ======
    index layers                                          channels stride
    ===== =============================================== ======== ======
    0     stem: 3x3/2, 3x3, 3x3 convs, Mixed-3a, Mixed-4a 192      4
    1     Mixed-5a (stem end), Inception-A x4             384      8
    2     Reduction-A, Inception-B x7                     1024     16
    3     Reduction-B, Inception-C x3                     1536     32
    ===== =============================================== ======== ======

    Unlike the paper's unpadded ("valid") convolutions and pools, every layer is padded,
    so a stage-``i`` map is ``ceil(H / stride_i)`` on a side: any input size works and
    299x299 gives 38/19/10 (not 35/17/8) for stages 1/2/3. Shapes of all weights are
    those of the reference, so converted checkpoints load.

    Args:
        in_channels: input image channels.
        out_indices: stages to return, see the table; default ``(3,)`` (classification).
        frozen_stages: freeze stages ``0..frozen_stages``; -1 freezes nothing.
        norm_eval: keep all BatchNorm layers in eval mode while training.
        norm_cfg: mmcv norm config of every conv; None: no norm (convs get biases).
        init_cfg: mmengine init config, default :data:`~cplugins_inception.layers.DEFAULT_INIT_CFG`.

    Attributes:
        out_channels: channels of each returned map, e.g. ``[384, 1024, 1536]`` for
            ``out_indices=(1, 2, 3)``.
        out_strides: stride of each returned map.

    Shapes: (N, in_channels, H, W) -> tuple of (N, out_channels[k], ceil(H/s_k), ceil(W/s_k)).
    """

    stage_names = ("stem", "inception_a", "inception_b", "inception_c")
    stage_channels = (192, 384, 1024, 1536)
    stage_strides = (4, 8, 16, 32)

    def __init__(self, in_channels: int = 3, out_indices: int | Sequence[int] = (3,),
                 frozen_stages: int = -1, norm_eval: bool = False,
                 norm_cfg: dict | None = DEFAULT_NORM_CFG,
                 init_cfg: dict | list[dict] | None = DEFAULT_INIT_CFG):
        super().__init__(out_indices, frozen_stages, norm_eval, init_cfg)
        conv = partial(conv_bn_relu, norm_cfg=norm_cfg)
        self.stages = nn.ModuleList([
            nn.Sequential(OrderedDict(
                conv1a=conv(in_channels, 32, 3, stride=2),
                conv2a=conv(32, 32, 3),
                conv2b=conv(32, 64, 3),
                mixed_3a=Mixed3a(norm_cfg),
                mixed_4a=Mixed4a(norm_cfg),
            )),
            nn.Sequential(OrderedDict(
                mixed_5a=Mixed5a(norm_cfg),
                **{f"inception_a{i + 1}": InceptionA(norm_cfg) for i in range(4)},
            )),
            nn.Sequential(OrderedDict(
                reduction_a=ReductionA(norm_cfg),
                **{f"inception_b{i + 1}": InceptionB(norm_cfg) for i in range(7)},
            )),
            nn.Sequential(OrderedDict(
                reduction_b=ReductionB(norm_cfg),
                **{f"inception_c{i + 1}": InceptionC(norm_cfg) for i in range(3)},
            )),
        ])
        self._freeze_stages()
