"""Hook specifications of the ``cplugins`` pluggy project.

A plugin is a plain module with ``@hookimpl`` functions, announced by an entry
point in the ``cplugins`` group::

    [project.entry-points.cplugins]
    augfpn = "cplugins_augfpn.plugin"

The module named by the entry point must stay light (no torch, no mmdet): it is
imported to *list* plugins. Heavy code lives in the modules that the returned
:class:`~cplugins.spec.ModuleSpec` targets point at, imported only on activation.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from cplugins.bench.case import BenchmarkCase
    from cplugins.check.example import Example
    from cplugins.spec import ModuleSpec
    from cplugins.templates.model import Template

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

    Return a list of :class:`~cplugins.bench.case.BenchmarkCase`: plain data naming the
    module config to time, its baseline, the registry scope and an input generator spec
    (e.g. the four ResNet-50 feature maps of an 800x1216 image for a neck). Must stay light
    like :func:`cplugins_modules`: no torch import; the tensors are built when a case runs.
    """


@hookspec
def cplugins_templates() -> list[Template]:
    """Declare training templates for ``cplugins templates`` / ``cplugins render`` (optional).

    Return a list of :class:`~cplugins.templates.model.Template`: a name, a task, a base
    config, typed hyperparameters and a ``"package.module:function"`` render target that
    turns validated hyperparameters into an mmengine config. Must stay light like
    :func:`cplugins_modules`: the render target is imported only when rendering.
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
