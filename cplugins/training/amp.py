"""Mixed precision on CPU: bfloat16 autocast (mmengine's ``AmpOptimWrapper`` is GPU-only).

bfloat16 keeps float32's exponent range, so no loss scaling is needed (or done): gradients
and the optimizer state stay float32; only the autocast-eligible ops (convolutions, matrix
products) run in bfloat16. mmcv's compiled CPU ops only take float32: they get float32 inputs
and run outside autocast (:func:`run_mmcv_ops_in_float32`).
"""
from __future__ import annotations

import sys
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper

_PATCHED = "_cplugins_float32_under_cpu_autocast"


def _in_float32(apply):
    """``Function.apply`` run in float32 with autocast off when CPU autocast is on; floating
    outputs are cast back to the first floating input's dtype (casts tracked by autograd)."""

    def wrapped(*args, **kwargs):
        if not torch.is_autocast_enabled("cpu"):
            return apply(*args, **kwargs)
        dtypes = [a.dtype for a in args if torch.is_tensor(a) and a.is_floating_point()]

        def to(x, dtype):
            return x.to(dtype) if torch.is_tensor(x) and x.is_floating_point() else x

        with torch.autocast("cpu", enabled=False):
            out = apply(*(to(a, torch.float32) for a in args),
                        **{k: to(v, torch.float32) for k, v in kwargs.items()})
        if not dtypes:
            return out
        if isinstance(out, tuple):
            return tuple(to(o, dtypes[0]) for o in out)
        return to(out, dtypes[0])

    setattr(wrapped, _PATCHED, True)
    return wrapped


def run_mmcv_ops_in_float32() -> list[str]:
    """Make mmcv's compiled ops (nms, RoIAlign, ...: float32-only CPU kernels) usable under
    CPU autocast (see :func:`_in_float32`); outside autocast nothing changes. Module-level
    aliases (``roi_align = RoIAlignFunction.apply``) are rebound too. Returns the ops."""
    patched = []
    modules = [(n, m) for n, m in list(sys.modules.items())
               if m is not None and (n == "mmcv.ops" or n.startswith("mmcv.ops."))]
    for name, module in modules:
        for attr, value in list(vars(module).items()):
            if not (isinstance(value, type) and issubclass(value, torch.autograd.Function)
                    and value.__module__ == name and "forward" in vars(value)):
                continue
            original = value.apply
            if getattr(original, _PATCHED, False):
                continue
            wrapped = _in_float32(original)
            value.apply = wrapped
            for _, other in modules:  # aliases such as mmcv.ops.roi_align.roi_align
                for alias, bound in list(vars(other).items()):
                    if (getattr(bound, "__self__", None) is value
                            and getattr(bound, "__func__", None) is original.__func__):
                        setattr(other, alias, wrapped)
            patched.append(f"{name}.{attr}")
    return patched


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
        run_mmcv_ops_in_float32()

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
        try:
            native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):  # a build without oneDNN: unknown, no warning
            native = True
        if not native:
            print("warning: --amp: this CPU has no native bfloat16 (AVX512-BF16/AMX): "
                  "bfloat16 autocast saves memory but runs slower than float32 here",
                  file=sys.stderr)
    return wrapper.type
