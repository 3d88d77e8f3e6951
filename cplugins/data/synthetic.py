"""Generate the embedded dataset a config declares in ``synthetic_data``."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def make_synthetic_data(spec: Mapping[str, Any]) -> dict:
    """``dict(task=..., data_root=..., **maker arguments)`` -> the maker's result (the set is
    generated once; deterministic, skipped when already present)."""
    from cplugins import shapes
    from cplugins.data import cityscapes

    spec = dict(spec)
    task = spec.pop("task")
    makers = {"detection": shapes.make_shapes_detection,
              "classification": shapes.make_shapes_classification,
              "segmentation": shapes.make_shapes_segmentation,
              "cityscapes": cityscapes.make_cityscapes}
    if task not in makers:
        raise ValueError(f"synthetic_data.task={task!r}; allowed: {', '.join(makers)}")
    root = spec.pop("data_root")
    return makers[task](root, **spec)
