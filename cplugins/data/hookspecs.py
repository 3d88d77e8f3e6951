"""Hook specifications the data part adds (through ``cplugins_add_hookspecs``)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from cplugins.hookspecs import hookspec

if TYPE_CHECKING:
    from argparse import _SubParsersAction

    from cplugins.data.layouts import DataSource


@hookspec
def cplugins_data_commands(subparsers: _SubParsersAction) -> None:
    """Add sub-commands to ``cplugins data`` (optional; ``cplugins-deeplake`` adds
    ``convert``). Same contract as ``cplugins_commands``: stay light, import in the handler."""


@hookspec
def cplugins_data_sources() -> list[DataSource]:
    """Declare dataset layouts this plugin reads, for templates' ``--data PATH`` and
    ``cplugins data check`` (optional).

    Return :class:`~cplugins.data.layouts.DataSource` objects: ``recognizes(root)``,
    ``resolve(task, root)`` and ``dataset(task, split, where, pipeline, kwargs)``. Must stay
    light like ``cplugins_modules``: import the reader inside the methods.
    """
