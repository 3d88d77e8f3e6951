"""Deprecated alias of :mod:`cplugins.inputs`, which moved into the core (what plugins depend on).

Every name resolves to :mod:`cplugins.inputs`'s, with a DeprecationWarning on import."""
import warnings as _warnings
from typing import Any as _Any

import cplugins.inputs as _new

_warnings.warn("cplugins.bench.inputs is deprecated: import cplugins.inputs (the same names)",
               DeprecationWarning, stacklevel=2)


def __getattr__(name: str) -> _Any:
    return getattr(_new, name)
