"""Embedded synthetic datasets, generated on demand and deterministic from a seed.

Names are resolved lazily so ``python -m cplugins.shapes`` runs cleanly.
"""
from __future__ import annotations

from typing import Any

#: public name -> the module of this package that defines it
_MODULES = {
    "CLASSES": "shapes",
    "SEG_CLASSES": "shapes",
    "SEG_PALETTE": "shapes",
    "make_shapes_classification": "shapes",
    "make_shapes_detection": "shapes",
    "make_shapes_segmentation": "shapes",
    "CITYSCAPES_CLASSES": "cityscapes",
    "make_cityscapes": "cityscapes",
}
__all__ = list(_MODULES)


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        from importlib import import_module

        return getattr(import_module(f"cplugins.data.{_MODULES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
