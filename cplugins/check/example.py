"""Example configurations ``cplugins check`` builds a plugin's modules from (plain data).

A plugin declares them with the ``cplugins_examples`` hook; a module without one falls back
to the plugin's benchmark case for it (``cplugins_benchmark_cases``: a ``kind="module"`` case
whose ``module["type"]`` is the module's name), run at small sizes. Like every hook, the
declaration stays light: no torch import.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from cplugins.spec import SCOPE_PACKAGES

_TARGET_CHARS = ":"


@dataclass(frozen=True)
class Example:
    """How to build one module of a plugin, and what to run it on.

    Args:
        name: the :class:`~cplugins.spec.ModuleSpec` name it builds (``type`` defaults to it).
        cfg: the config, e.g. ``dict(type="MyNeck", in_channels=[8, 16], out_channels=8)``.
        scope: the registry scope it is built and run in (``"mmdet"``, ``"mmpretrain"``,
            ...); default (None): the scope of the registry the module registers into.
        inputs: model modules: ``{"generator": NAME, **params}`` as in a benchmark case
            (``cplugins.cases.GENERATORS`` or ``"package.module:func"``); the check runs
            ``train_method`` on them with backward. ``None``: build-only checks.
        train_method: method called with backward (``"forward"``; ``"loss"`` for heads whose
            generator supplies loss inputs: ``cls_features`` for an mmpretrain ``ClsHead``,
            ``cplugins.check.inputs:seg_features`` for an mmseg ``BaseDecodeHead``).
        setup: ``"package.module:func"`` called as ``func(tmp_dir)`` before building; returns
            config keys to merge into ``cfg`` (e.g. ``data_root`` of a dataset it wrote).
        source: where it came from (``"cplugins_examples"`` or ``"benchmark case NAME"``).
    """

    name: str
    cfg: dict
    scope: str | None = None
    inputs: dict | None = None
    train_method: str = "forward"
    setup: str | None = None
    source: str = field(default="cplugins_examples", compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"Example name {self.name!r} must be the module's name "
                             "(a Python identifier)")
        if not isinstance(self.cfg, Mapping):
            raise ValueError(f"Example {self.name!r}: cfg must be a dict, got {self.cfg!r}")
        object.__setattr__(self, "cfg", {"type": self.name, **dict(self.cfg)})
        if self.scope is not None and self.scope not in SCOPE_PACKAGES:
            raise ValueError(f"Example {self.name!r}: scope={self.scope!r}; allowed: "
                             f"{', '.join(sorted(SCOPE_PACKAGES))}")
        if self.inputs is not None and (not isinstance(self.inputs, Mapping)
                                        or "generator" not in self.inputs):
            raise ValueError(f"Example {self.name!r}: inputs must be a dict with a "
                             f"'generator', got {self.inputs!r}")
        if self.setup is not None and (not isinstance(self.setup, str)
                                       or _TARGET_CHARS not in self.setup):
            raise ValueError(f"Example {self.name!r}: setup must look like "
                             f"'package.module:func', got {self.setup!r}")
        if not isinstance(self.train_method, str) or not self.train_method.isidentifier():
            raise ValueError(f"Example {self.name!r}: train_method must be a method name, "
                             f"got {self.train_method!r}")
