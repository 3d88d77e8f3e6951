"""What each part of the cplugins distribution imports is declared where a resolver reads it:
the core's ``dependencies``, or the extra of the optional part (pyproject.toml)."""
from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
#: the optional parts and the extra that installs each
PARTS = {"training": "train", "templates": "train", "progress": "train", "tune": "tune",
         "bench": "bench", "data": "data"}
#: what the core imports inside functions from the stack of the plugin it serves (a plugin for
#: mmdet brings torch, mmengine, mmcv and mmdet): never at import time (test_core_alone)
PLUGIN_STACK = {"torch", "numpy", "mmengine", "mmcv", "mmdet", "mmpretrain", "mmsegmentation",
                "pillow", "pytest", "copier"}
#: imported by a template only for the library it trains (its preflight names what is missing)
TEMPLATE_LIBRARIES = {"mmpretrain", "mmsegmentation", "ftfy", "regex"}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_names(lines: list[str]) -> set[str]:
    return {_canonical(re.match(r"[A-Za-z0-9_.\-]+", line)[0]) for line in lines}


def _extra(name: str, seen: set[str] | None = None) -> set[str]:
    """The distributions extra ``name`` installs, following ``cplugins[...]`` references."""
    seen = set() if seen is None else seen
    seen.add(name)
    found = set()
    for line in PROJECT["optional-dependencies"][name]:
        match = re.match(r"cplugins\[([^\]]+)\]", line)
        if match:
            for inner in match[1].split(","):
                if inner not in seen:
                    found |= _extra(inner.strip(), seen)
        else:
            found |= _requirement_names([line])
    return found


def _imported_distributions(paths: list[Path], declared: set[str] = frozenset()) -> set[str]:
    """The third-party distributions the files import (anywhere: module level or functions)."""
    tops = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                tops |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                tops.add(node.module.split(".")[0])
    tops -= set(sys.stdlib_module_names) | {"cplugins", "__future__"}
    by_package = metadata.packages_distributions()
    # a declared requirement with a marker that does not apply here (tomli before 3.11)
    tops -= {t for t in tops if t not in by_package and _canonical(t) in declared}
    missing = {t for t in tops if t not in by_package}
    assert not missing, f"imports no installed distribution provides: {sorted(missing)}"
    return {_canonical(d) for t in tops for d in by_package[t]}


def _files(part: str) -> list[Path]:
    root = REPO / "cplugins" / part
    return sorted(root.rglob("*.py")) if root.is_dir() else [root.with_suffix(".py")]


CORE_FILES = sorted(p for p in (REPO / "cplugins").rglob("*.py")
                    if p.relative_to(REPO / "cplugins").parts[0].removesuffix(".py")
                    not in PARTS and "template" not in p.relative_to(REPO / "cplugins").parts[1:2])


def test_the_core_declares_what_it_imports_beyond_the_plugin_stack():
    core = _requirement_names(PROJECT["dependencies"])
    undeclared = _imported_distributions(CORE_FILES, core) - core - PLUGIN_STACK
    assert not undeclared, f"the core imports these without declaring them: {sorted(undeclared)}"


@pytest.mark.parametrize("part", sorted(PARTS))
def test_each_optional_part_declares_what_it_imports(part):
    declared = _extra(PARTS[part]) | _requirement_names(PROJECT["dependencies"])
    allowed = TEMPLATE_LIBRARIES if part == "templates" else set()
    undeclared = _imported_distributions(_files(part)) - declared - allowed
    assert not undeclared, (f"cplugins.{part} imports {sorted(undeclared)}, which "
                            f"cplugins[{PARTS[part]}] does not declare")


def test_the_extras_resolve():
    """Every extra names real requirements, and the ones it references exist."""
    for name in PROJECT["optional-dependencies"]:
        assert _extra(name), name
