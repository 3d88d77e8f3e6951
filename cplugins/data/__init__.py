"""Embedded synthetic datasets, generated on demand and deterministic from a seed.

Names are resolved lazily so ``python -m cplugins.data.shapes`` runs cleanly.
"""
from __future__ import annotations

from typing import Any

__all__ = [
    "CLASSES",
    "SEG_CLASSES",
    "SEG_PALETTE",
    "make_shapes_classification",
    "make_shapes_detection",
    "make_shapes_segmentation",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from cplugins.data import shapes

        return getattr(shapes, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
