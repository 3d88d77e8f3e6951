"""Training templates: named, pre-composed configs with typed, validated hyperparameters.

    from cplugins.templates import get_template, render
    cfg = render("MMDetection_YOLOX", {"model_size": "tiny", "batch_size": 4}, data="coco/")

Templates come from plugins through the ``cplugins_templates`` hook (the built-in ones from
``cplugins.builtin``). Listing and validating import no torch; :func:`render` needs mmengine.
"""
from __future__ import annotations

from typing import Any

from cplugins.templates.catalog import Catalog, get_template, load_catalog
from cplugins.templates.model import (
    Hyperparameter,
    Template,
    TemplateError,
    TemplateValidationError,
    parse_assignments,
)

__all__ = [
    "Catalog",
    "Hyperparameter",
    "Template",
    "TemplateError",
    "TemplateValidationError",
    "get_template",
    "load_catalog",
    "parse_assignments",
    "render",
    "render_text",
    "write_config",
]


def __getattr__(name: str) -> Any:
    if name in ("render", "render_text", "write_config"):
        from cplugins.templates import rendering as module

        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
