"""Hook module of cplugins' tuning part (``cplugins[tune]``): the ``cplugins tune`` command
(optuna is imported only when it runs)."""
from __future__ import annotations

from cplugins.hookspecs import hookimpl


@hookimpl
def cplugins_commands(subparsers) -> None:
    from cplugins.tune.cli import add_parser

    add_parser(subparsers)
    subparsers.choices["tune"].set_defaults(extra="tune")
