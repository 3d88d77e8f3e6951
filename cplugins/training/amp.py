"""Mixed precision on CPU: bfloat16 autocast (mmengine's ``AmpOptimWrapper`` is GPU-only).

bfloat16 keeps float32's exponent range, so no loss scaling is needed (or done): gradients
and the optimizer state stay float32; only the autocast-eligible ops (convolutions, matrix
products) run in bfloat16.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper


class CpuAmpOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose forward runs under ``torch.autocast('cpu', bfloat16)``.

    Use: ``optim_wrapper = dict(type='CpuAmpOptimWrapper', optimizer=...)``; ``tools/train.py
    --amp`` picks it when there is no GPU.
    """

    def __init__(self, dtype: str = "bfloat16", **kwargs):
        if dtype != "bfloat16":
            raise ValueError(f"CpuAmpOptimWrapper dtype={dtype!r}; allowed: bfloat16 (CPU "
                             "autocast has no float16 loss scaling)")
        super().__init__(**kwargs)
        self.cast_dtype = torch.bfloat16

    @contextmanager
    def optim_context(self, model):
        with super().optim_context(model), torch.autocast("cpu", dtype=self.cast_dtype):
            yield


def use_amp(cfg) -> str:
    """Switch ``cfg.optim_wrapper`` to mixed precision; returns the wrapper type chosen."""
    wrapper = cfg.optim_wrapper
    if torch.cuda.is_available():
        wrapper.type = "AmpOptimWrapper"
        wrapper.setdefault("loss_scale", "dynamic")
    else:
        wrapper.type = "CpuAmpOptimWrapper"
        wrapper.pop("loss_scale", None)
    return wrapper.type
