"""Version ranges a plugin declares for the OpenMMLab stack, checked before anything is imported.

A plugin says which mmdet / mmpretrain / mmseg / mmcv / mmengine / torch it works with in its
``Requires-Dist``: in ``dependencies``, or (so that pip does not install upstream mmdet over a
fork) in the ``openmmlab`` extra (``[project.optional-dependencies] openmmlab =
["mmdet>=3.1,<3.4"]``), which cplugins checks whether or not it was installed.

A range is checked against whatever distribution provides the *import package* (``mmdet``,
``mmseg``, ``mmcv``...): a maintained fork installed under another distribution name
(``onedl-mmdetection`` provides ``mmdet``) satisfies a range written for upstream. Versions
are read from distribution metadata, so checking costs no torch import.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from packaging.requirements import Requirement

#: the distributions whose ranges are checked (PyPI names), with the import package each
#: provides: a range is checked against the distribution that provides that package
IMPORT_NAMES: dict[str, str] = {"mmdet": "mmdet", "mmpretrain": "mmpretrain",
                                "mmsegmentation": "mmseg", "mmcv": "mmcv", "mmcv-lite": "mmcv",
                                "mmengine": "mmengine", "torch": "torch"}
STACK: tuple[str, ...] = tuple(IMPORT_NAMES)
#: the extra whose requirements are ranges checked by cplugins but not forced on pip
RANGES_EXTRA = "openmmlab"
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class VersionProblem:
    """One requirement of a plugin that the installed stack does not meet."""

    requirement: Requirement
    installed: str | None  # None: not installed
    provider: str | None = None  # the distribution that provides it, when not the named one

    @property
    def package(self) -> str:
        return self.requirement.name

    def __str__(self) -> str:
        via = f" as {self.provider}" if self.provider else ""
        have = f"installed {self.installed}{via}" if self.installed else "not installed"
        return f"requires {self.requirement} ({self.package} {have})"


def provider(name: str) -> tuple[str, str] | None:
    """``(distribution, version)`` that provides what stack distribution ``name`` provides: the
    named distribution if installed, else one that installs the same import package (a fork,
    ``mmcv-lite``); None when nothing does."""
    try:
        return name, metadata.version(name)
    except metadata.PackageNotFoundError:
        pass
    package = IMPORT_NAMES.get(_canonical(name))
    if package is None:
        return None
    for dist in sorted(metadata.packages_distributions().get(package, [])):
        try:
            return dist, metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def installed_version(distribution: str) -> str | None:
    """The installed version of ``distribution``; None when it is not installed. For a stack
    distribution (:data:`IMPORT_NAMES`) not installed under its own name, the version of what
    provides its import package (``mmcv-lite`` for ``mmcv``, a fork for ``mmdet``)."""
    found = provider(distribution)
    return found[1] if found else None


def stack_requirements(dist: metadata.Distribution) -> list[Requirement]:
    """The distribution's requirements on :data:`STACK` packages that apply here: its
    dependencies and its ``openmmlab`` extra (:data:`RANGES_EXTRA`)."""
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
        if requirement.marker is not None and not any(
                requirement.marker.evaluate({"extra": extra}) for extra in ("", RANGES_EXTRA)):
            continue  # another extra, or another platform / Python
        found.append(requirement)
    return found


def version_problems(dist: metadata.Distribution) -> list[VersionProblem]:
    """Requirements of ``dist`` on the stack that the installed versions do not satisfy."""
    problems = []
    for requirement in stack_requirements(dist):
        found = provider(requirement.name)
        installed = found[1] if found else None
        if installed is None or not requirement.specifier.contains(installed, prereleases=True):
            via = found[0] if found and _canonical(found[0]) != _canonical(requirement.name) \
                else None
            problems.append(VersionProblem(requirement, installed, via))
    return problems


def describe(label: str, problems: list[VersionProblem]) -> str:
    """One sentence: what ``label`` (``"acme-parts 0.1.0"``) needs, what is installed, the fix."""
    distribution = label.split(" ")[0]
    upstream = [p for p in problems if p.provider is None]
    forks = [p for p in problems if p.provider is not None]
    fixes = [f"install a release of {distribution} that supports the installed versions"]
    if upstream:
        fixes.append("pip install " + " ".join(f"'{p.requirement}'" for p in upstream))
    for p in forks:  # pip install 'mmdet...' would install upstream next to the fork
        fixes.append(f"install a release of {p.provider} (it provides {p.package}) in "
                     f"{p.requirement.specifier}")
    return (f"{label} is incompatible with the installed stack: "
            f"{'; '.join(str(p) for p in problems)}. Fix: {', or '.join(fixes)}")
