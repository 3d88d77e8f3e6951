"""Declarations a plugin makes: which class goes into which mmengine registry."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

#: registry names accepted in ``"scope::name"`` references, mapped to the
#: attribute of ``<package>.registry`` (mmengine's naming, shared by every repo).
REGISTRY_ATTRIBUTES: dict[str, str] = {
    "model": "MODELS",
    "task_util": "TASK_UTILS",
    "dataset": "DATASETS",
    "data_sampler": "DATA_SAMPLERS",
    "transform": "TRANSFORMS",
    "metric": "METRICS",
    "evaluator": "EVALUATOR",
    "hook": "HOOKS",
    "loop": "LOOPS",
    "optimizer": "OPTIMIZERS",
    "optim_wrapper": "OPTIM_WRAPPERS",
    "optim_wrapper_constructor": "OPTIM_WRAPPER_CONSTRUCTORS",
    "param_scheduler": "PARAM_SCHEDULERS",
    "visualizer": "VISUALIZERS",
    "weight_initializer": "WEIGHT_INITIALIZERS",
}

#: OpenMMLab scopes and the import package that owns their registries.
SCOPE_PACKAGES: dict[str, str] = {
    "mmengine": "mmengine",
    "mmdet": "mmdet",
    "mmpretrain": "mmpretrain",
    "mmseg": "mmseg",
    "mmcv": "mmcv",
}

ROOT_SCOPE = "mmengine"
_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


@dataclass(frozen=True)
class RegistryRef:
    """A registry named as ``"scope::name"``; a bare ``"name"`` is mmengine's shared root."""

    scope: str
    name: str

    @classmethod
    def parse(cls, text: str) -> RegistryRef:
        scope, sep, name = text.partition("::")
        if not sep:
            scope, name = ROOT_SCOPE, text
        if scope not in SCOPE_PACKAGES:
            raise ValueError(
                f"registry {text!r}: unknown scope {scope!r}; "
                f"allowed scopes: {', '.join(sorted(SCOPE_PACKAGES))}")
        if name not in REGISTRY_ATTRIBUTES:
            raise ValueError(
                f"registry {text!r}: unknown registry {name!r}; "
                f"allowed: {', '.join(sorted(REGISTRY_ATTRIBUTES))}")
        return cls(scope, name)

    @property
    def package(self) -> str:
        return SCOPE_PACKAGES[self.scope]

    @property
    def is_root(self) -> bool:
        return self.scope == ROOT_SCOPE

    def __str__(self) -> str:
        return f"{self.scope}::{self.name}"


@dataclass(frozen=True)
class ModuleSpec:
    """One class a plugin provides.

    Args:
        name: the ``type=`` name configs use, e.g. ``"AugFPN"``.
        target: ``"package.module:Class"``; imported only on activation.
        registries: where it is registered, e.g. ``("mmdet::model",)``; a bare
            ``"model"`` means mmengine's root registry, visible from every scope.
    """

    name: str
    target: str
    registries: tuple[RegistryRef, ...] = field(default=())

    def __init__(self, name: str, target: str, registries: str | tuple | list = "model"):
        if not name.isidentifier():
            raise ValueError(f"ModuleSpec name {name!r} must be a Python identifier")
        if not _TARGET.match(target):
            raise ValueError(
                f"ModuleSpec {name!r}: target {target!r} must look like 'package.module:Class'")
        refs = (registries,) if isinstance(registries, str) else tuple(registries)
        if not refs:
            raise ValueError(f"ModuleSpec {name!r}: give at least one registry")
        parsed = tuple(r if isinstance(r, RegistryRef) else RegistryRef.parse(r) for r in refs)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "target", target)
        object.__setattr__(self, "registries", parsed)

    @property
    def module(self) -> str:
        return self.target.partition(":")[0]
