"""Deprecated alias of :mod:`cplugins.training.weights` (checkpoint sources moved to the training
part, which the templates part builds on)."""
import warnings as _warnings
from typing import Any as _Any

import cplugins.training.weights as _new

_warnings.warn("cplugins.templates.weights is deprecated: import cplugins.training.weights "
               "(the same names)", DeprecationWarning, stacklevel=2)


def __getattr__(name: str) -> _Any:
    return getattr(_new, name)
