"""Summary statistics of timing samples (pure Python)."""
from __future__ import annotations

import math
from collections.abc import Sequence


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default ``'linear'`` method), ``q`` in [0, 1]."""
    if not values:
        raise ValueError("quantile of an empty sample")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be in [0, 1], got {q!r}")
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarize(samples: Sequence[float]) -> dict[str, float]:
    """Median, quartiles (the spread), min, max and mean of ``samples``."""
    if not samples:
        raise ValueError("summarize: no samples")
    return {
        "median": quantile(samples, 0.5),
        "p25": quantile(samples, 0.25),
        "p75": quantile(samples, 0.75),
        "min": min(samples),
        "max": max(samples),
        "mean": sum(samples) / len(samples),
        "n": len(samples),
    }


def paired_ratio(module: Sequence[float], baseline: Sequence[float]) -> dict[str, float]:
    """Ratio module/baseline from interleaved rounds: the ratio of medians, and the median
    and quartiles of the per-round ratios ``module[i] / baseline[i]`` (its spread)."""
    if len(module) != len(baseline) or not module:
        raise ValueError(f"paired_ratio needs two equally long non-empty samples, got "
                         f"{len(module)} and {len(baseline)}")
    if any(b <= 0 for b in baseline):
        raise ValueError("paired_ratio: baseline samples must be > 0")
    per_round = [m / b for m, b in zip(module, baseline)]
    return {
        "of_medians": quantile(module, 0.5) / quantile(baseline, 0.5),
        "median": quantile(per_round, 0.5),
        "p25": quantile(per_round, 0.25),
        "p75": quantile(per_round, 0.75),
        "n": len(per_round),
    }


def format_seconds(ms: float) -> str:
    """``12.3 ms`` / ``1.23 s`` / ``456 us``."""
    if ms >= 1000:
        return f"{ms / 1000:.2f} s"
    if ms >= 1:
        return f"{ms:.1f} ms" if ms >= 100 else f"{ms:.2f} ms"
    return f"{ms * 1000:.0f} us"


def format_count(value: float | None, unit: str = "") -> str:
    """``1.23 G`` style with SI prefixes; ``-`` for None."""
    if value is None:
        return "-"
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.2f} {prefix}{unit}"
    return f"{value:.0f} {unit}".rstrip()


def format_bytes(value: float | None) -> str:
    if value is None:
        return "-"
    for factor, prefix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if abs(value) >= factor:
            return f"{value / factor:.1f} {prefix}"
    return f"{value:.0f} B"
