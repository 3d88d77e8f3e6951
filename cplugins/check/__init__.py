"""``cplugins check``: a plugin distribution's contract, one result per check with its fix.

Per distribution: its hook module loads and is light, its version ranges hold; per module:
the target imports and is of the right kind for its registry, its name clashes with no stock
module and no other distribution, it registers, builds from its example configuration and
survives forward/backward, ``deepcopy``, pickling and a ``state_dict`` round trip.
:mod:`cplugins.testing` runs the same checks as pytest tests. This package is light (no torch)
until checks run.
"""
from cplugins.check.example import Example
from cplugins.check.result import CheckResult

__all__ = ["CheckResult", "Example"]
