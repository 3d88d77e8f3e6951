"""Hook module of cplugins' data part (``cplugins[data]``): ``cplugins data check`` and the
``cplugins_data_commands`` hook through which data plugins add ``cplugins data`` commands."""
from __future__ import annotations

import argparse
import sys

from cplugins.hookspecs import hookimpl

#: ``cplugins data`` commands a plugin brings -> that plugin: said when no installed one did
PLUGIN_COMMANDS = {"convert": "cplugins-deeplake"}


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
    for name, plugin in PLUGIN_COMMANDS.items():
        if name not in data_subparsers.choices:
            parser = data_subparsers.add_parser(name, help=f"(needs the {plugin} plugin)")
            parser.add_argument("arguments", nargs=argparse.REMAINDER)
            parser.set_defaults(func=lambda args, name=name, plugin=plugin:
                                _not_installed(name, plugin))


def _not_installed(name: str, plugin: str) -> int:
    from cplugins.data.layouts import DATA_PLUGINS

    print(f"error: `cplugins data {name}` comes with the {plugin} plugin, which is not "
          f"installed: {DATA_PLUGINS[plugin]}", file=sys.stderr)
    return 2
