"""Timing statistics on the standard library's ``statistics``: numpy's default quantiles."""
from __future__ import annotations

import random

import numpy as np
import pytest

from cplugins.bench.stats import paired_ratio, quartiles, summarize


@pytest.mark.parametrize("size", [2, 3, 4, 7, 10, 31])
def test_quartiles_and_summary_match_numpy(size):
    values = [random.Random(size).uniform(0.1, 100.0) for _ in range(size)]
    expected = np.quantile(values, [0.25, 0.5, 0.75])  # numpy's default: 'linear'
    np.testing.assert_allclose(quartiles(values), expected, rtol=1e-12)
    summary = summarize(values)
    assert (summary["min"], summary["max"], summary["n"]) == (min(values), max(values), size)
    assert summary["mean"] == pytest.approx(np.mean(values), rel=1e-12)


def test_one_sample_and_errors():
    assert quartiles([3.0]) == (3.0, 3.0, 3.0)
    assert summarize([3.0])["p75"] == 3.0
    assert paired_ratio([2.0], [4.0]) == {"of_medians": 0.5, "median": 0.5, "p25": 0.5,
                                          "p75": 0.5, "n": 1}
    with pytest.raises(ValueError, match="empty"):
        quartiles([])
    with pytest.raises(ValueError, match="must be > 0"):
        paired_ratio([1.0], [0.0])
