"""Embedded synthetic datasets, generated on demand and deterministic from a seed.

Names are resolved lazily so ``python -m cplugins.shapes`` runs cleanly.
"""
from __future__ import annotations

from typing import Any

#: public name -> the module that defines it (the shapes sets live in the core: cplugins.shapes)
_MODULES = {
    "CLASSES": "cplugins.shapes",
    "SEG_CLASSES": "cplugins.shapes",
    "SEG_PALETTE": "cplugins.shapes",
    "make_shapes_classification": "cplugins.shapes",
    "make_shapes_detection": "cplugins.shapes",
    "make_shapes_segmentation": "cplugins.shapes",
    "CITYSCAPES_CLASSES": "cplugins.data.cityscapes",
    "make_cityscapes": "cplugins.data.cityscapes",
}
__all__ = list(_MODULES)


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        from importlib import import_module

        return getattr(import_module(_MODULES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
