"""What limits a step: one call under ``torch.profiler`` (kernel launches, busy time, top ops).

On CUDA it counts the GPU kernels one call launches and how much of the call's wall time the
GPU spends in them: a low busy share with many short kernels means launch-bound, a high share
in elementwise / copy kernels means memory-bound, layout conversions show up as
``copy_``/``contiguous``/``nchwToNhwc`` kernels. On the CPU the same summary lists aten ops.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import torch

from cplugins.bench.measure import synchronize


def profile_call(fn: Callable[[], object], device: torch.device, top: int = 8) -> dict:
    """Profile one call of ``fn``: kernel (CUDA) or op (CPU) count, their total self time,
    the wall time, and the ``top`` entries by self time."""
    from torch.profiler import ProfilerActivity, profile

    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    synchronize(device)
    with profile(activities=activities) as prof:
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        wall_ms = (time.perf_counter() - t0) * 1e3
    events = prof.key_averages()
    if cuda:
        def self_us(e) -> float:
            return float(getattr(e, "self_device_time_total",
                                 getattr(e, "self_cuda_time_total", 0.0)))

        device_events = [e for e in events if self_us(e) > 0]
        kernels = sum(int(e.count) for e in device_events)
        busy_ms = sum(self_us(e) for e in device_events) / 1e3
        ranked = sorted(device_events, key=self_us, reverse=True)[:top]
        return {"unit": "cuda kernels", "launches": kernels, "busy_ms": busy_ms,
                "wall_ms": wall_ms, "busy_fraction": busy_ms / wall_ms if wall_ms else None,
                "top": [{"name": e.key, "count": int(e.count), "self_ms": self_us(e) / 1e3}
                        for e in ranked]}
    ops = [e for e in events if e.key.startswith("aten::")]
    ranked = sorted(ops, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    busy_ms = sum(float(e.self_cpu_time_total) for e in ops) / 1e3
    return {"unit": "aten ops", "launches": sum(int(e.count) for e in ops), "busy_ms": busy_ms,
            "wall_ms": wall_ms, "busy_fraction": busy_ms / wall_ms if wall_ms else None,
            "top": [{"name": e.key, "count": int(e.count),
                     "self_ms": float(e.self_cpu_time_total) / 1e3} for e in ranked]}
