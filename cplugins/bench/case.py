"""Deprecated alias of :mod:`cplugins.cases`, which moved into the core (what plugins depend on).

Every name resolves to :mod:`cplugins.cases`'s, with a DeprecationWarning on import."""
import warnings as _warnings
from typing import Any as _Any

import cplugins.cases as _new

_warnings.warn("cplugins.bench.case is deprecated: import cplugins.cases (the same names)",
               DeprecationWarning, stacklevel=2)


def __getattr__(name: str) -> _Any:
    return getattr(_new, name)
