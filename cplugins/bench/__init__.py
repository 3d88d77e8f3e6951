"""Benchmark harness of cplugins: ``cplugins bench`` (see :mod:`cplugins.bench.cli`).

Light on purpose: this package's ``__init__``, :mod:`~cplugins.cases`,
:mod:`~cplugins.bench.collect`, :mod:`~cplugins.bench.stats` and :mod:`~cplugins.bench.cli`
import no torch; inputs, measurement and reports do, when a benchmark runs.
"""
from cplugins.cases import GENERATORS, BenchmarkCase, cases_from_dicts

__all__ = ["GENERATORS", "BenchmarkCase", "cases_from_dicts"]
