"""What ``cplugins check`` checks: an installed distribution (DIST) or a source folder (PATH).

A PATH is checked through its *installed* distribution (``pip install PATH`` or ``-e PATH``
first): plugins are found through installed entry points, so that is what users get. The
folder's ``pyproject.toml`` gives the distribution name; its ``cplugins`` entry points must
match the installed ones (a stale install is reported).
"""
from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from cplugins.check.contract import canonical
from cplugins.check.result import CheckResult
from cplugins.errors import CPluginsError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class CheckTargetError(CPluginsError):
    """The DIST or PATH given to ``cplugins check`` cannot be checked."""


def _installed_plugin_distributions() -> list[str]:
    names = {ep.dist.name for ep in metadata.entry_points(group="cplugins")
             if ep.dist is not None}
    return sorted(names, key=canonical)


def _pyproject(path: Path) -> dict:
    file = path / "pyproject.toml" if path.is_dir() else path
    if not file.is_file():
        raise CheckTargetError(f"PATH {str(path)!r} has no pyproject.toml")
    try:
        return tomllib.loads(file.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise CheckTargetError(f"{file}: not valid TOML ({exc})") from None


def resolve(argument: str | None) -> tuple[list[str], list[CheckResult]]:
    """The distributions to check and, for a PATH, the result of comparing it with the
    installed distribution. No argument: every installed plugin distribution."""
    if argument is None:
        found = _installed_plugin_distributions()
        if not found:
            raise CheckTargetError("no installed distribution declares a 'cplugins' entry "
                                   "point; give DIST or PATH")
        return found, []
    path = Path(argument)
    if path.exists() and (path.is_dir() or path.name == "pyproject.toml"):
        return _resolve_path(path)
    try:
        metadata.distribution(argument)
    except metadata.PackageNotFoundError:
        installed = ", ".join(_installed_plugin_distributions()) or "none"
        raise CheckTargetError(f"{argument!r} is neither an installed distribution nor a "
                               f"folder with a pyproject.toml; installed plugin "
                               f"distributions: {installed}") from None
    return [argument], []


def _resolve_path(path: Path) -> tuple[list[str], list[CheckResult]]:
    project = _pyproject(path).get("project", {})
    name = project.get("name")
    if not name:
        raise CheckTargetError(f"{path}/pyproject.toml has no [project] name")
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        raise CheckTargetError(
            f"{name!r} (from {path}/pyproject.toml) is not installed; cplugins finds plugins "
            f"through installed entry points, so install it first: pip install {path} (or "
            f"pip install -e {path} while developing)") from None
    declared = dict(project.get("entry-points", {}).get("cplugins", {}))
    installed = {ep.name: ep.value for ep in dist.entry_points if ep.group == "cplugins"}
    label = f"{dist.metadata['Name']} {dist.version}"
    if declared != installed or project.get("version", dist.version) != dist.version:
        result = CheckResult(
            "source", name, "fail",
            f"the installed {label} differs from {path}: entry points {installed} installed, "
            f"{declared} in pyproject.toml (version {project.get('version', '?')})",
            f"reinstall: pip install {path}")
    else:
        result = CheckResult("source", name, "pass",
                             f"{path} is installed as {label} (same entry points)")
    return [name], [result]
