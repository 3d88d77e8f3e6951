"""Hook module of cplugins' data part (``cplugins[data]``): ``cplugins data check`` and the
``cplugins_data_commands`` hook through which data plugins add ``cplugins data`` commands."""
from __future__ import annotations

from cplugins.hookspecs import hookimpl


@hookimpl
def cplugins_add_hookspecs(pluginmanager) -> None:
    from cplugins.data import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


@hookimpl
def cplugins_commands(subparsers) -> None:
    from cplugins.data.check import add_parsers
    from cplugins.manager import get_manager

    data_subparsers = add_parsers(subparsers)
    subparsers.choices["data"].set_defaults(extra="data")
    get_manager().pm.hook.cplugins_data_commands(subparsers=data_subparsers)
