"""Deprecated alias of :mod:`cplugins.shapes`, which moved into the core (what plugins depend on).

Every name resolves to :mod:`cplugins.shapes`'s, with a DeprecationWarning on import."""
import warnings as _warnings
from typing import Any as _Any

import cplugins.shapes as _new

_warnings.warn("cplugins.data.shapes is deprecated: import cplugins.shapes (the same names)",
               DeprecationWarning, stacklevel=2)


def __getattr__(name: str) -> _Any:
    return getattr(_new, name)


if __name__ == "__main__":  # python -m cplugins.data.shapes (now python -m cplugins.shapes)
    import sys

    sys.exit(_new.main())
