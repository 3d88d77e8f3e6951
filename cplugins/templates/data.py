"""Deprecated alias of :mod:`cplugins.data.layouts` (the dataset layouts moved to the data
part, which templates and the data check share)."""
import warnings as _warnings
from typing import Any as _Any

import cplugins.data.layouts as _new

_warnings.warn("cplugins.templates.data is deprecated: import cplugins.data.layouts "
               "(the same names)", DeprecationWarning, stacklevel=2)


def __getattr__(name: str) -> _Any:
    return getattr(_new, name)
