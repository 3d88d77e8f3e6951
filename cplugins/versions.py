"""Version ranges a plugin declares for the OpenMMLab stack, checked before anything is imported.

A plugin says which mmdet / mmpretrain / mmseg / mmcv / mmengine / torch it works with in its
``Requires-Dist`` (``dependencies = ["mmdet>=3.1,<3.4"]``); the installed versions are read
from distribution metadata, so checking costs no torch import.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from packaging.requirements import Requirement

#: the distributions whose ranges are checked (PyPI names; mmseg's is mmsegmentation)
STACK: tuple[str, ...] = ("mmdet", "mmpretrain", "mmsegmentation", "mmcv", "mmengine", "torch")
#: distributions that install the same import package as a STACK one
ALTERNATIVES: dict[str, tuple[str, ...]] = {"mmcv": ("mmcv", "mmcv-lite")}
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class VersionProblem:
    """One requirement of a plugin that the installed stack does not meet."""

    requirement: Requirement
    installed: str | None  # None: not installed

    @property
    def package(self) -> str:
        return self.requirement.name

    def __str__(self) -> str:
        have = f"installed {self.installed}" if self.installed else "not installed"
        return f"requires {self.requirement} ({self.package} {have})"


def installed_version(name: str) -> str | None:
    """The installed version of distribution ``name`` (or an alternative of it), or None."""
    for candidate in ALTERNATIVES.get(_canonical(name), (name,)):
        try:
            return metadata.version(candidate)
        except metadata.PackageNotFoundError:
            continue
    return None


def stack_requirements(dist: metadata.Distribution) -> list[Requirement]:
    """The distribution's requirements on :data:`STACK` packages that apply here."""
    lines = [line for line in dist.requires or []
             if (name := _NAME.match(line)) and _canonical(name[1]) in STACK]
    if not lines:
        return []  # most plugins: packaging (0.2 s to import) is not needed
    from packaging.requirements import InvalidRequirement, Requirement

    found = []
    for line in lines:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue  # an extra, or another platform / Python
        found.append(requirement)
    return found


def version_problems(dist: metadata.Distribution) -> list[VersionProblem]:
    """Requirements of ``dist`` on the stack that the installed versions do not satisfy."""
    problems = []
    for requirement in stack_requirements(dist):
        installed = installed_version(requirement.name)
        if installed is None or not requirement.specifier.contains(installed, prereleases=True):
            problems.append(VersionProblem(requirement, installed))
    return problems


def describe(label: str, problems: list[VersionProblem]) -> str:
    """One sentence: what ``label`` (``"acme-parts 0.1.0"``) needs, what is installed, the fix."""
    distribution = label.split(" ")[0]
    wanted = " ".join(f"'{p.requirement}'" for p in problems)
    return (f"{label} is incompatible with the installed stack: "
            f"{'; '.join(str(p) for p in problems)}. Fix: install a release of {distribution} "
            f"that supports the installed versions, or pip install {wanted}")
