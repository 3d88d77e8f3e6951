"""Summary statistics of timing samples (the standard library's :mod:`statistics`) and their
formatting."""
from __future__ import annotations

import statistics
from collections.abc import Sequence


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """``(p25, median, p75)`` by linear interpolation between order statistics (numpy's default
    ``'linear'`` method: :func:`statistics.quantiles` with ``method='inclusive'``)."""
    if not values:
        raise ValueError("quartiles of an empty sample")
    if len(values) == 1:
        value = float(values[0])
        return value, value, value
    p25, median, p75 = statistics.quantiles(values, n=4, method="inclusive")
    return p25, median, p75


def summarize(samples: Sequence[float]) -> dict[str, float]:
    """Median, quartiles (the spread), min, max and mean of ``samples``."""
    if not samples:
        raise ValueError("summarize: no samples")
    p25, median, p75 = quartiles(samples)
    return {"median": median, "p25": p25, "p75": p75, "min": min(samples),
            "max": max(samples), "mean": statistics.fmean(samples), "n": len(samples)}


def paired_ratio(module: Sequence[float], baseline: Sequence[float]) -> dict[str, float]:
    """Ratio module/baseline from interleaved rounds: the ratio of medians, and the median
    and quartiles of the per-round ratios ``module[i] / baseline[i]`` (its spread)."""
    if len(module) != len(baseline) or not module:
        raise ValueError(f"paired_ratio needs two equally long non-empty samples, got "
                         f"{len(module)} and {len(baseline)}")
    if any(b <= 0 for b in baseline):
        raise ValueError("paired_ratio: baseline samples must be > 0")
    p25, median, p75 = quartiles([m / b for m, b in zip(module, baseline)])
    return {"of_medians": statistics.median(module) / statistics.median(baseline),
            "median": median, "p25": p25, "p75": p75, "n": len(module)}


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
    """``1.5 MiB`` style with binary prefixes; ``-`` for None."""
    if value is None:
        return "-"
    for factor, prefix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if abs(value) >= factor:
            return f"{value / factor:.1f} {prefix}"
    return f"{value:.0f} B"
