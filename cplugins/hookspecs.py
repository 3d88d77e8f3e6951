"""Hook specifications of the ``cplugins`` pluggy project.

A plugin is a plain module with ``@hookimpl`` functions, announced by an entry
point in the ``cplugins`` group::

    [project.entry-points.cplugins]
    augfpn = "cplugins_augfpn.plugin"

cplugins' own optional parts (training, templates, tune, bench, data) are registered the same
way, by entry points of the ``cplugins`` distribution: they add their commands with
:func:`cplugins_commands` and their own hook specifications with :func:`cplugins_add_hookspecs`
(e.g. ``cplugins_templates``, :mod:`cplugins.templates.hookspecs`).

The module named by the entry point must stay light (no torch, no mmdet): it is
imported to *list* plugins. Heavy code lives in the modules that the returned
:class:`~cplugins.spec.ModuleSpec` targets point at, imported only on activation.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from argparse import _SubParsersAction

    from cplugins.cases import BenchmarkCase
    from cplugins.check.example import Example
    from cplugins.manager import PluginManager
    from cplugins.spec import ModuleSpec

PROJECT_NAME = "cplugins"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def cplugins_modules() -> list[ModuleSpec]:
    """Declare the model parts this plugin provides.

    Return a list of :class:`~cplugins.spec.ModuleSpec`, one per class, each
    naming the import target (``"package.module:Class"``) and the registries it
    goes into (``"mmdet::model"``, ``"mmpretrain::model"``, ``"mmseg::model"``,
    ``"model"`` for mmengine's shared root, ``"mmdet::task_util"``, ...).
    Nothing is imported when this hook runs; targets are imported on activation.
    """


@hookspec
def cplugins_benchmark_cases() -> list[BenchmarkCase]:
    """Declare benchmark cases for ``cplugins bench`` (optional).

    Return a list of :class:`~cplugins.cases.BenchmarkCase`: plain data naming the
    module config to time, its baseline, the registry scope and an input generator spec
    (e.g. the four ResNet-50 feature maps of an 800x1216 image for a neck). Must stay light
    like :func:`cplugins_modules`: no torch import; the tensors are built when a case runs.
    """


@hookspec
def cplugins_examples() -> list[Example]:
    """Declare example configurations for ``cplugins check`` and ``cplugins.testing`` (optional).

    Return a list of :class:`~cplugins.check.example.Example`: the module's name, a config it
    builds from, the scope, and for model modules the inputs to run forward/backward on (a
    benchmark input generator). Modules without one are checked with their benchmark case.
    Must stay light like :func:`cplugins_modules`.
    """


@hookspec
def cplugins_configs() -> list[str]:
    """Declare the training configs this plugin ships as package data, for ``cplugins configs``
    (optional).

    Return the absolute paths of the ``.py`` config files (mmengine configs, e.g. inheriting
    ``mmdet::`` configs) inside the installed distribution, so that they travel with the
    wheel. Must stay light like :func:`cplugins_modules`: paths only, nothing parsed.
    """


@hookspec(historic=True)
def cplugins_add_hookspecs(pluginmanager: pluggy.PluginManager) -> None:
    """Add hook specifications (optional; pytest's ``pytest_addhooks``).

    Called once when the plugin is registered: ``pluginmanager.add_hookspecs(module)`` makes the
    hooks of ``module`` available to every plugin (cplugins' templates part adds
    ``cplugins_templates`` this way).
    """


@hookspec(historic=True)
def cplugins_startup(manager: PluginManager) -> None:
    """Called once with the process-wide manager when it is created (built-in plugins) or when
    the plugin is registered (optional): install import hooks here, nothing heavy."""


@hookspec
def cplugins_commands(subparsers: _SubParsersAction) -> None:
    """Add sub-commands to the ``cplugins`` command line (optional).

    ``subparsers`` is the :mod:`argparse` sub-parsers action of ``cplugins``: call
    ``subparsers.add_parser(name, ...)`` and ``set_defaults(func=handler)`` where
    ``handler(args) -> int`` is the exit status. Must stay light: import what the command
    needs inside ``handler``, and say which extra installs it when that import fails.
    """
