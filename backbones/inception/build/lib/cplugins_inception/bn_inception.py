"""BN-Inception (Ioffe & Szegedy, ICML 2015, arXiv:1502.03167), as an mmpretrain / mmdet backbone.

The network of the batch-normalization paper (GoogLeNet with BN, 5x5 convs replaced by
two 3x3, often called "InceptionV2"), with the layer sizes of the Caffe model that
Cadene's ``pretrainedmodels`` ships as ``bninception`` (11,295,240 parameters with the
1000-class classifier and a bias in every conv).
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from functools import partial
from typing import NamedTuple

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


class BlockSpec(NamedTuple):
    """Widths of one BN-Inception module (table 1 of the GoogLeNet / BN-Inception papers)."""

    in_channels: int
    ch1x1: int  #: 1x1 branch; 0 in the stride-2 modules (no 1x1 branch)
    ch3x3_reduce: int
    ch3x3: int
    ch_double_reduce: int
    ch_double: int  #: both 3x3 convs of the double-3x3 branch
    pool: str  #: 'avg' or 'max'
    pool_proj: int  #: 1x1 after the pool; 0: pass-through (stride-2 modules)
    stride: int = 1

    @property
    def out_channels(self) -> int:
        pool = self.pool_proj if self.pool_proj else self.in_channels
        return self.ch1x1 + self.ch3x3 + self.ch_double + pool


#: module name -> widths, as in the Caffe prototxt / Cadene's ``bninception``
BLOCKS: dict[str, BlockSpec] = {
    "inception_3a": BlockSpec(192, 64, 64, 64, 64, 96, "avg", 32),
    "inception_3b": BlockSpec(256, 64, 64, 96, 64, 96, "avg", 64),
    "inception_3c": BlockSpec(320, 0, 128, 160, 64, 96, "max", 0, stride=2),
    "inception_4a": BlockSpec(576, 224, 64, 96, 96, 128, "avg", 128),
    "inception_4b": BlockSpec(576, 192, 96, 128, 96, 128, "avg", 128),
    "inception_4c": BlockSpec(576, 160, 128, 160, 128, 160, "avg", 128),
    "inception_4d": BlockSpec(608, 96, 128, 192, 160, 192, "avg", 128),
    "inception_4e": BlockSpec(608, 0, 128, 192, 192, 256, "max", 0, stride=2),
    "inception_5a": BlockSpec(1056, 352, 192, 320, 160, 224, "avg", 128),
    "inception_5b": BlockSpec(1024, 352, 192, 320, 192, 224, "max", 128),
}


class BNInceptionBlock(nn.Module):
    """1x1 || 1x1-3x3 || 1x1-3x3-3x3 || pool(-1x1), concatenated.

    (N, spec.in_channels, H, W) -> (N, spec.out_channels, ceil(H/stride), ceil(W/stride)).
    """

    def __init__(self, spec: BlockSpec, norm_cfg: dict | None, conv_bias: bool | str):
        super().__init__()
        conv = partial(conv_bn_relu, norm_cfg=norm_cfg, bias=conv_bias)
        s = spec
        self.branch1x1 = conv(s.in_channels, s.ch1x1, 1) if s.ch1x1 else None
        self.branch3x3 = nn.Sequential(conv(s.in_channels, s.ch3x3_reduce, 1),
                                       conv(s.ch3x3_reduce, s.ch3x3, 3, stride=s.stride))
        self.branch_double3x3 = nn.Sequential(
            conv(s.in_channels, s.ch_double_reduce, 1),
            conv(s.ch_double_reduce, s.ch_double, 3),
            conv(s.ch_double, s.ch_double, 3, stride=s.stride))
        # Caffe's average pooling counts the zero padding (count_include_pad=True).
        pool = (max_pool_3x3(s.stride) if s.pool == "max"
                else avg_pool_3x3(count_include_pad=True))
        self.branch_pool = (nn.Sequential(pool, conv(s.in_channels, s.pool_proj, 1))
                            if s.pool_proj else pool)

    def forward(self, x: Tensor) -> Tensor:
        outs = [] if self.branch1x1 is None else [self.branch1x1(x)]
        outs += [self.branch3x3(x), self.branch_double3x3(x), self.branch_pool(x)]
        return torch.cat(outs, 1)


class BNInception(InceptionBackbone):
    """BN-Inception backbone (Ioffe & Szegedy 2015; "bninception" / "InceptionV2").

    Stages (``out_indices`` refer to these; each starts with its downsampling):

    ===== =============================================== ======== ======
    index layers                                          channels stride
    ===== =============================================== ======== ======
    0     stem: 7x7/2 conv, 3x3/2 max pool, 1x1, 3x3 conv 192      4
    1     3x3/2 max pool, inception 3a, 3b                320      8
    2     inception 3c (/2), 4a, 4b, 4c, 4d               608      16
    3     inception 4e (/2), 5a, 5b                       1024     32
    ===== =============================================== ======== ======

    Inception 3c outputs 576 and 4e 1056 channels; they are inside stages, not returned.
    All layers are padded: a stage-``i`` map is ``ceil(H / stride_i)`` on a side (224 ->
    56/28/14/7, like the reference; odd and small sizes work too).

    Args:
        in_channels: input image channels.
        out_indices: stages to return, see the table; default ``(3,)`` (classification).
        frozen_stages: freeze stages ``0..frozen_stages``; -1 freezes nothing.
        norm_eval: keep all BatchNorm layers in eval mode while training.
        norm_cfg: mmcv norm config of every conv; None: no norm (convs get biases).
        conv_bias: ``'auto'`` (default): conv bias only without norm; ``True``: a bias in
            every conv, as in the Caffe-converted checkpoint (+10,016 parameters that BN
            makes redundant: their gradient is zero in training).
        init_cfg: mmengine init config, default :data:`~cplugins_inception.layers.DEFAULT_INIT_CFG`.

    Attributes:
        out_channels: channels of each returned map, e.g. ``[320, 608, 1024]`` for
            ``out_indices=(1, 2, 3)``.
        out_strides: stride of each returned map.

    Shapes: (N, in_channels, H, W) -> tuple of (N, out_channels[k], ceil(H/s_k), ceil(W/s_k)).
    """

    stage_names = ("stem", "inception_3", "inception_4", "inception_5")
    stage_channels = (192, 320, 608, 1024)
    stage_strides = (4, 8, 16, 32)

    def __init__(self, in_channels: int = 3, out_indices: int | Sequence[int] = (3,),
                 frozen_stages: int = -1, norm_eval: bool = False,
                 norm_cfg: dict | None = DEFAULT_NORM_CFG, conv_bias: bool | str = "auto",
                 init_cfg: dict | list[dict] | None = DEFAULT_INIT_CFG):
        super().__init__(out_indices, frozen_stages, norm_eval, init_cfg)
        conv = partial(conv_bn_relu, norm_cfg=norm_cfg, bias=conv_bias)

        def blocks(*names: str) -> dict[str, BNInceptionBlock]:
            return {name: BNInceptionBlock(BLOCKS[name], norm_cfg, conv_bias) for name in names}

        self.stages = nn.ModuleList([
            nn.Sequential(OrderedDict(
                conv1=conv(in_channels, 64, 7, stride=2),
                pool1=max_pool_3x3(stride=2),
                conv2_reduce=conv(64, 64, 1),
                conv2=conv(64, 192, 3),
            )),
            nn.Sequential(OrderedDict(
                pool2=max_pool_3x3(stride=2),
                **blocks("inception_3a", "inception_3b"),
            )),
            nn.Sequential(OrderedDict(
                **blocks("inception_3c", "inception_4a", "inception_4b", "inception_4c",
                         "inception_4d"),
            )),
            nn.Sequential(OrderedDict(
                **blocks("inception_4e", "inception_5a", "inception_5b"),
            )),
        ])
        self._freeze_stages()
