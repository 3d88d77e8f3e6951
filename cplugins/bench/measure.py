"""Measurement primitives: clocks, peak memory, FLOPs, the matmul peak, the environment.

One code path for both devices: CUDA uses CUDA events (or synchronized wall clocks) and the
caching allocator's peak; the CPU uses ``perf_counter`` and the growth of the process RSS
(``psutil``, sampled by a thread while the step runs).
"""
from __future__ import annotations

import ctypes
import gc
import platform
import sys
import threading
import time
from collections.abc import Callable

import psutil
import torch

from cplugins.versions import installed_version

DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16,
                                  "fp16": torch.float16}
TIMERS = ("auto", "events", "sync", "process")


def parse_device(text: str) -> torch.device:
    """``cuda``, ``cuda:1`` or ``cpu``; raises naming the value when unusable here."""
    try:
        device = torch.device(text)
    except RuntimeError:
        raise ValueError(f"--device {text!r}: allowed: cpu, cuda, cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {text!r}: allowed: cpu, cuda, cuda:N")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {text!r}: CUDA is not available in this torch "
                             f"{torch.__version__} (cuda={torch.version.cuda}); use --device cpu")
        index = device.index if device.index is not None else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise ValueError(f"--device {text!r}: only {torch.cuda.device_count()} CUDA "
                             "device(s)")
        device = torch.device("cuda", index)
    return device


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Timer:
    """Times one call in milliseconds.

    ``method``: ``"events"`` (CUDA events around the call, GPU time between them), ``"sync"``
    (device synchronized before and after, ``perf_counter`` wall time), ``"auto"`` (events on
    CUDA, ``perf_counter`` on the CPU, where ``events`` / ``sync`` resolve to it too) or
    ``"process"`` (CPU only: CPU time of this process, ``time.process_time``; on a shared
    machine with one torch thread it leaves out the time other processes hold the core or the
    process is stopped, but with several threads it counts their spin-waiting too).
    """

    def __init__(self, device: torch.device, method: str = "auto") -> None:
        if method not in TIMERS:
            raise ValueError(f"timer method {method!r}: allowed: {', '.join(TIMERS)}")
        self.device = device
        if method == "process":
            if device.type == "cuda":
                raise ValueError("timer 'process' measures CPU time: use it with --device cpu")
        elif device.type != "cuda":
            method = "perf_counter"
        elif method == "auto":
            method = "events"
        self.method = method

    def __call__(self, fn: Callable[[], object]) -> float:
        if self.method == "process":
            t0 = time.process_time()
            fn()
            return (time.process_time() - t0) * 1e3
        if self.method == "events":
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return float(start.elapsed_time(end))
        synchronize(self.device)
        t0 = time.perf_counter()
        fn()
        synchronize(self.device)
        return (time.perf_counter() - t0) * 1e3


# --- memory -------------------------------------------------------------------------------
def _trim_heap() -> None:
    """Return freed heap memory to the OS (glibc), so RSS growth reflects this step."""
    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            return


class _RssSampler(threading.Thread):
    """Highest resident set size (bytes) of this process seen every ``interval`` s until
    :meth:`stop`."""

    def __init__(self, interval: float) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self._process = psutil.Process()
        self.peak = self.rss()
        self._stop_event = threading.Event()

    def rss(self) -> int:
        return self._process.memory_info().rss

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(self.interval)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return max(self.peak, self.rss())


def peak_memory(fn: Callable[[], object], device: torch.device,
                interval: float = 0.0005) -> dict:
    """Peak memory one call of ``fn`` adds: CUDA allocator peak above what was allocated
    before, or on the CPU the peak RSS growth (sampled every ``interval`` s; approximate)."""
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        synchronize(device)
        peak = torch.cuda.max_memory_allocated(device)
        return {"bytes": int(peak - base), "method": "cuda allocator peak above start"}
    _trim_heap()
    sampler = _RssSampler(interval)
    base = sampler.peak
    sampler.start()
    try:
        fn()
    finally:
        peak = sampler.stop()
    return {"bytes": int(max(0, peak - base)), "method": "process RSS growth (sampled)"}


# --- FLOPs --------------------------------------------------------------------------------
def count_flops(fn: Callable[[], object]) -> int | None:
    """FLOPs of one call as ``torch.utils.flop_counter`` counts them (matmuls, convolutions,
    attention; elementwise ops and custom kernels such as mmcv's RoIAlign count 0)."""
    try:
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:
        return None
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def matmul_peak(device: torch.device, dtype: torch.dtype, size: int | None = None,
                rounds: int = 5, timer: Timer | None = None) -> dict:
    """Measured dense matmul throughput (FLOP/s) of ``device`` in ``dtype``: the best of
    ``rounds`` timed ``(n, n) @ (n, n)`` products (after a warm-up)."""
    if size is None:
        size = 8192 if device.type == "cuda" else (1024 if dtype == torch.float32 else 512)
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ValueError(f"matmul peak size must be an int > 0, got {size!r}")
    timer = timer or Timer(device)
    rng = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=rng).to(device=device, dtype=dtype)
    b = torch.randn(size, size, generator=rng).to(device=device, dtype=dtype)
    out = torch.empty(size, size, device=device, dtype=dtype)

    def run() -> None:
        torch.mm(a, b, out=out)

    for _ in range(2):
        run()
    synchronize(device)
    samples = [timer(run) for _ in range(rounds)]
    flops = 2.0 * size ** 3
    return {"dtype": str(dtype).replace("torch.", ""), "size": size, "flops": flops,
            "samples_ms": samples, "flops_per_s": flops / (min(samples) / 1e3)}


# --- environment --------------------------------------------------------------------------
def cpu_name() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``; psutil does not report it), else what
    ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def mmcv_ops_available() -> bool:
    """Whether mmcv's compiled ops load (full mmcv), without importing ``mmcv.ops``."""
    try:
        import importlib.util

        if importlib.util.find_spec("mmcv") is None:
            return False
        import importlib

        importlib.import_module("mmcv._ext")
        return True
    except Exception:  # ImportError, OSError of a mismatched build
        return False


def environment(device: torch.device) -> dict:
    """Device, library versions and numeric settings for the JSON record."""
    info = {
        "device": str(device),
        "device_name": cpu_name(),
        "cpu": cpu_name(),
        "cpu_count": psutil.cpu_count(logical=True),
        "cpu_cores": psutil.cpu_count(logical=False),
        "cpus_usable": (len(psutil.Process().cpu_affinity())  # not on macOS
                        if hasattr(psutil.Process, "cpu_affinity") else None),
        "memory_bytes": psutil.virtual_memory().total,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": None,
        "mmcv_ops": mmcv_ops_available(),
        # a stack name reports what provides its package: mmcv-lite or a fork under "mmcv"
        "versions": {d: installed_version(d) for d in ("mmengine", "mmcv", "mmdet", "mmpretrain",
                                                       "mmsegmentation", "cplugins",
                                                       "cplugins-augfpn", "numpy")},
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update({
            "device_name": torch.cuda.get_device_name(device),
            "device_memory_bytes": props.total_memory,
            "compute_capability": f"{props.major}.{props.minor}",
            "cudnn": torch.backends.cudnn.version(),
            "allow_tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
            "allow_tf32_cudnn": torch.backends.cudnn.allow_tf32,
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
        })
    return info
