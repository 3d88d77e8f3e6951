"""Hook specifications the templates part adds (through ``cplugins_add_hookspecs``)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from cplugins.hookspecs import hookspec

if TYPE_CHECKING:
    from cplugins.templates.model import Template


@hookspec
def cplugins_templates() -> list[Template]:
    """Declare training templates for ``cplugins templates`` / ``cplugins render`` (optional).

    Return a list of :class:`~cplugins.templates.model.Template`: a name, a task, a base
    config, typed hyperparameters and a ``"package.module:function"`` render target that
    turns validated hyperparameters into an mmengine config. Must stay light like
    ``cplugins_modules``: the render target is imported only when rendering.
    """
