"""BatchNorm over the whole batch of every process, on CPU (gloo) as well as on GPUs.

torch's ``SyncBatchNorm`` refuses CPU tensors ("expected input tensor to be on GPU"), so a
multi-process CPU run normalises each process's share of the batch on its own: 2 processes
at batch 1 then train differently from 1 process at batch 2. :class:`CrossRankBatchNorm`
all-reduces the per-channel count, sum and squared deviations with the autograd-aware
``torch.distributed.nn.functional.all_reduce`` (gradients flow back to every rank's input,
as with ``SyncBatchNorm``) and updates the running statistics exactly like ``BatchNorm2d``
on the concatenated batch.

Modules in eval mode (mmdet's ``norm_eval=True``, frozen stages) use their running
statistics and communicate nothing, as ``BatchNorm2d`` would. In a single process (or
without an initialised process group) the module is plain BatchNorm.
"""
from __future__ import annotations

import logging

import torch
import torch.distributed as dist
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from torch import nn
from torch.distributed.nn.functional import all_reduce
from torch.nn.modules.batchnorm import _BatchNorm


def _world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class CrossRankBatchNorm(_BatchNorm):
    """BatchNorm (any ``N, C, *`` input) with statistics over every process's batch."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (N, C, ...), got {input.dim()}D")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """``input``: (N, C, *) -> normalised (N, C, *)."""
        self._check_input_dim(input)
        use_batch_stats = self.training or not self.track_running_stats
        if not use_batch_stats or _world_size() == 1:
            return super().forward(input)
        channels = input.shape[1]
        dtype = torch.promote_types(input.dtype, torch.float32)  # statistics in >= float32
        flat = input.transpose(0, 1).reshape(channels, -1).to(dtype)  # (C, n_local)
        local = torch.cat([flat.sum(1), flat.new_full((1,), flat.shape[1])])
        total = all_reduce(local)  # (C + 1,): summed over ranks, autograd-aware
        count = total[-1]
        mean = total[:-1] / count  # (C,)
        squared = all_reduce(((flat - mean[:, None]) ** 2).sum(1))  # two passes: exact
        var = squared / count  # biased, used for normalising
        if self.training and self.track_running_stats:
            self._update_running_stats(mean.detach(), var.detach(), count.detach())
        shape = (1, channels) + (1,) * (input.dim() - 2)
        out = (input - mean.view(shape).to(input.dtype)) * torch.rsqrt(
            var.view(shape).to(input.dtype) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor,
                              count: torch.Tensor) -> None:
        self.num_batches_tracked.add_(1)
        if self.momentum is None:  # cumulative moving average, as BatchNorm
            factor = 1.0 / float(self.num_batches_tracked)
        else:
            factor = self.momentum
        unbiased = var * count / (count - 1).clamp(min=1)
        self.running_mean.mul_(1 - factor).add_(factor * mean.to(self.running_mean.dtype))
        self.running_var.mul_(1 - factor).add_(factor * unbiased.to(self.running_var.dtype))


def convert_cross_rank_bn(module: nn.Module) -> nn.Module:
    """Swap every ``BatchNorm1d/2d/3d`` (and ``SyncBatchNorm``) in ``module`` for
    :class:`CrossRankBatchNorm`, keeping the very same parameter and buffer tensors (so
    optimizers and DDP still see them), the training flag and ``requires_grad``.

    Returns the converted module (``module`` itself unless it is a BatchNorm).
    """
    if isinstance(module, _BatchNorm) and not isinstance(module, CrossRankBatchNorm):
        converted = CrossRankBatchNorm(module.num_features, module.eps, module.momentum,
                                       module.affine, module.track_running_stats)
        if module.affine:
            converted.weight, converted.bias = module.weight, module.bias
        if module.track_running_stats:
            converted.running_mean = module.running_mean
            converted.running_var = module.running_var
            converted.num_batches_tracked = module.num_batches_tracked
        converted.train(module.training)
        return converted
    for name, child in module.named_children():
        new_child = convert_cross_rank_bn(child)
        if new_child is not child:
            module._modules[name] = new_child
    return module


class CrossRankBatchNormHook(Hook):
    """Convert the model's BatchNorm layers to :class:`CrossRankBatchNorm` before training
    (``tools/train.py --sync-bn`` on CPU). With one process it has no effect (a warning)."""

    priority = "VERY_HIGH"

    def before_run(self, runner) -> None:
        if _world_size() == 1:
            print_log("CrossRankBatchNormHook (--sync-bn): a single process, nothing to "
                      "synchronise: BatchNorm stays per-batch", logger="current",
                      level=logging.WARNING)
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        before = sum(isinstance(m, CrossRankBatchNorm) for m in model.modules())
        convert_cross_rank_bn(model)
        after = sum(isinstance(m, CrossRankBatchNorm) for m in model.modules())
        print_log(f"CrossRankBatchNormHook: {after - before} BatchNorm layers now normalise "
                  f"over the batch of all {_world_size()} processes", logger="current")


__all__ = ["CrossRankBatchNorm", "CrossRankBatchNormHook", "convert_cross_rank_bn"]
