"""Pieces shared by the Inception backbones: conv-norm-ReLU, weight init, stage plumbing.

:class:`InceptionBackbone` holds everything that is not architecture: validation of
``out_indices`` / ``frozen_stages``, freezing, ``norm_eval`` and the multi-level forward.
Subclasses only build ``self.stages`` (one module per output stride 4, 8, 16, 32).
"""
from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from typing import Union

from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

KernelSize = Union[int, tuple[int, int]]

#: default ``norm_cfg`` of both backbones
DEFAULT_NORM_CFG: dict = dict(type="BN", requires_grad=True)

#: default ``init_cfg`` of both backbones, the one place weights are initialised: He-normal
#: (fan_out, ReLU) convolutions, unit-scale / zero-shift norms, zero conv biases. It is
#: the same scheme ``ConvModule`` applies when built, so the two never disagree.
DEFAULT_INIT_CFG: list[dict] = [
    dict(type="Kaiming", layer="Conv2d", mode="fan_out", nonlinearity="relu", bias=0),
    dict(type="Constant", layer=["_BatchNorm", "GroupNorm"], val=1, bias=0),
]


def same_padding(kernel_size: KernelSize) -> tuple[int, int]:
    """Padding that keeps the size at stride 1 (and gives ``ceil(H / s)`` at stride ``s``)."""
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    return (kh - 1) // 2, (kw - 1) // 2


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: KernelSize,
                 stride: int = 1, norm_cfg: dict | None = DEFAULT_NORM_CFG,
                 bias: bool | str = "auto") -> ConvModule:
    """Conv (``same`` padding) -> norm (``norm_cfg``; none if None) -> ReLU.

    ``bias='auto'`` gives the conv a bias only without norm; ``bias=True`` forces one
    (redundant before BN, kept for checkpoints converted from Caffe).
    """
    with warnings.catch_warnings():
        # ConvModule warns that a bias before BN is unnecessary; only asked for on purpose.
        warnings.filterwarnings("ignore", message="Unnecessary conv bias")
        return ConvModule(in_channels, out_channels, kernel_size, stride=stride,
                          padding=same_padding(kernel_size), bias=bias,
                          norm_cfg=copy.deepcopy(norm_cfg), act_cfg=dict(type="ReLU"))


def max_pool_3x3(stride: int) -> nn.MaxPool2d:
    """3x3 max pooling padded by 1: output ``ceil(H / stride)``, never empty."""
    return nn.MaxPool2d(3, stride=stride, padding=1)


def avg_pool_3x3(count_include_pad: bool) -> nn.AvgPool2d:
    """3x3 stride-1 average pooling padded by 1 (size preserving)."""
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=count_include_pad)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class InceptionBackbone(BaseModule):
    """Multi-level backbone base: stage ``i`` of ``stages`` ends at stride ``stage_strides[i]``.

    Subclasses set the class attributes ``stage_names``, ``stage_channels`` and
    ``stage_strides``, call ``super().__init__`` (which validates the arguments), assign
    ``self.stages`` (an ``nn.ModuleList``) and finally call ``self._freeze_stages()``.

    Args:
        out_indices: stages whose outputs ``forward`` returns, always in increasing stage
            order; negative indices count from the last stage.
        frozen_stages: stages ``0..frozen_stages`` are frozen (``requires_grad=False``,
            norm layers kept in eval mode); -1 freezes nothing.
        norm_eval: keep every BatchNorm in eval mode (frozen running statistics) in training.
        init_cfg: mmengine init config; see :data:`DEFAULT_INIT_CFG`.
    """

    stage_names: tuple[str, ...] = ()
    stage_channels: tuple[int, ...] = ()
    stage_strides: tuple[int, ...] = ()

    def __init__(self, out_indices: int | Sequence[int], frozen_stages: int, norm_eval: bool,
                 init_cfg: dict | list[dict] | None):
        super().__init__(init_cfg=init_cfg)
        self.num_stages = len(self.stage_channels)
        self.out_indices: tuple[int, ...] = self._check_out_indices(out_indices)
        self.frozen_stages: int = self._check_frozen_stages(frozen_stages)
        self.norm_eval = bool(norm_eval)
        #: channels of each returned feature map, in the order ``forward`` returns them
        self.out_channels: list[int] = [self.stage_channels[i] for i in self.out_indices]
        #: strides of each returned feature map w.r.t. the input
        self.out_strides: list[int] = [self.stage_strides[i] for i in self.out_indices]
        self.stages = nn.ModuleList()

    def _stage_list(self) -> str:
        return ", ".join(f"{i}={name}" for i, name in enumerate(self.stage_names))

    def _check_out_indices(self, out_indices: int | Sequence[int]) -> tuple[int, ...]:
        n = self.num_stages
        allowed = (f"allowed: integers in [{-n}, {n - 1}] ({self._stage_list()}; "
                   f"negative values count from the last stage)")
        if _is_int(out_indices):
            out_indices = (out_indices,)
        if (not isinstance(out_indices, Sequence) or isinstance(out_indices, str)
                or len(out_indices) == 0):
            raise ValueError(f"{type(self).__name__}: out_indices must be a non-empty tuple of "
                             f"stage indices, got {out_indices!r}; {allowed}")
        bad = [i for i in out_indices if not _is_int(i) or not -n <= i < n]
        if bad:
            raise ValueError(f"{type(self).__name__}: out_indices {tuple(out_indices)!r} has "
                             f"invalid entries {bad!r}; {allowed}")
        normalized = [i % n for i in out_indices]
        if len(set(normalized)) != len(normalized):
            raise ValueError(f"{type(self).__name__}: out_indices {tuple(out_indices)!r} names "
                             f"a stage twice; {allowed}")
        return tuple(sorted(normalized))

    def _check_frozen_stages(self, frozen_stages: int) -> int:
        n = self.num_stages
        if not _is_int(frozen_stages) or not -1 <= frozen_stages < n:
            raise ValueError(f"{type(self).__name__}: frozen_stages must be an integer in "
                             f"[-1, {n - 1}] (-1: nothing frozen; k: stages 0..k frozen; "
                             f"{self._stage_list()}), got {frozen_stages!r}")
        return frozen_stages

    def _freeze_stages(self) -> None:
        for stage in self.stages[:self.frozen_stages + 1]:
            stage.eval()
            for param in stage.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> InceptionBackbone:
        """Set train/eval mode; frozen stages (and all BN if ``norm_eval``) stay in eval."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        """(N, C_in, H, W) -> tuple of (N, out_channels[k], ceil(H / out_strides[k]), ...)."""
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
