"""Names the OpenMMLab packages register themselves, found by reading their source (no import).

``cplugins list`` must not import torch or mmdet, yet it has to tell a plugin that registers
``FPN`` into ``mmdet::model`` that mmdet already has one. mmengine registries fill themselves
from the packages named in their ``locations`` (``Registry('model', locations=
['mmdet.models'])``); the registering decorators in those files are read as text.
The shared root registries (scope ``mmengine``) are filled by mmengine and mmcv themselves.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cplugins.spec import REGISTRY_ATTRIBUTES, ROOT_SCOPE, SCOPE_PACKAGES, ModuleSpec, RegistryRef
from cplugins.versions import installed_version

#: packages whose modules register into mmengine's root registries
ROOT_PACKAGES: tuple[str, ...] = ("mmengine", "mmcv")
#: import package -> distribution, where they differ (for the cache key)
SCOPE_DISTRIBUTIONS: dict[str, str] = {"mmseg": "mmsegmentation"}
_SCAN_VERSION = 1  # bump when the scan changes what it finds

# MODELS.register_module(...) on one line: a decorator, or a call with module=Cls
_REGISTER = re.compile(r"(?P<at>@?)\s*(?P<attr>[A-Z_]+)\.register_module\((?P<args>[^)]*)\)?")
_DEFINITION = re.compile(r"\s*(?:async\s+)?(?:class|def)\s+(?P<name>\w+)")
_MODULE_ARG = re.compile(r"\bmodule\s*=\s*(?P<module>[\w.]+)")
_QUOTED = re.compile(r"""['"](\w+)['"]""")


@dataclass(frozen=True)
class StockClash:
    """A name a plugin declares in a registry that the owning package registers already."""

    name: str
    registry: RegistryRef
    owner: str  # the stock package(s), e.g. "mmdet"
    where: str  # the source file that registers it, e.g. "mmdet/models/necks/fpn.py"

    def __str__(self) -> str:
        return f"{self.name!r} in {self.registry} is {self.owner}'s own ({self.where})"


def _package_dir(package: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@functools.cache
def registry_locations(scope: str) -> dict[str, tuple[str, ...]]:
    """``{"MODELS": ("mmdet.models",), ...}`` read from ``<package>/registry.py`` (AST)."""
    root = _package_dir(SCOPE_PACKAGES[scope])
    if root is None:
        return {}
    sources = [root / "registry.py", *sorted((root / "registry").glob("*.py"))]
    locations: dict[str, tuple[str, ...]] = {}
    for source in (s for s in sources if s.is_file()):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                    and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
                continue
            for keyword in node.value.keywords:
                if keyword.arg == "locations" and isinstance(keyword.value,
                                                             (ast.List, ast.Tuple)):
                    locations[node.targets[0].id] = tuple(
                        e.value for e in keyword.value.elts
                        if isinstance(e, ast.Constant) and isinstance(e.value, str))
    return locations


def _names_in(text: str) -> list[tuple[str, str]]:
    """(registry attribute, name) pairs that a module's source registers: decorated classes
    and functions (``@MODELS.register_module()``, ``(name='X')``, ``(['A', 'B'])``) and calls
    with ``module=Cls``. Line-based: only lines that mention ``register_module`` are parsed."""
    lines = text.splitlines()
    found = []
    for i, line in enumerate(lines):
        if "register_module(" not in line:
            continue
        match = _REGISTER.search(line)
        if match is None:
            continue
        quoted = _QUOTED.findall(match["args"])
        if match["at"]:  # a decorator: the name is the definition below it (other decorators
            for below in lines[i + 1:i + 10]:  # may come in between)
                definition = _DEFINITION.match(below)
                if definition:
                    found += [(match["attr"], n) for n in quoted or [definition["name"]]]
                    break
        else:
            module = _MODULE_ARG.search(match["args"])
            if module and (quoted or module["module"].split(".")[-1][:1].isupper()):  # not a
                # loop variable (``for m in (...): MODELS.register_module(module=m)``)
                found += [(match["attr"], n) for n in
                          quoted or [module["module"].split(".")[-1]]]
    return found


def _source_files(module: str) -> list[Path]:
    top, _, rest = module.partition(".")
    root = _package_dir(top)
    if root is None:
        return []
    path = root.joinpath(*rest.split(".")) if rest else root
    if path.is_dir():
        return sorted(path.rglob("*.py"))
    file = path.with_suffix(".py")
    return [file] if file.is_file() else []


def _cache_file(module: str, top: Path) -> Path:
    """Where the scan of ``module`` is kept: keyed by the package's version and location."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cplugins"
    version = installed_version(SCOPE_DISTRIBUTIONS.get(top.name, top.name)) or "?"
    key = hashlib.sha256(f"{top}|{version}|{module}|{_SCAN_VERSION}".encode()).hexdigest()[:16]
    return base / f"stock-{module}-{version}-{key}.json"


@functools.cache
def _registered_in(module: str) -> dict[str, dict[str, str]]:
    """``{attribute: {name: file}}`` registered by the sources of ``module``: scanned once per
    installed version of its package (then read from the user's cache dir)."""
    top = _package_dir(module.split(".")[0])
    if top is None:
        return {}
    cache = _cache_file(module, top)
    try:
        return json.loads(cache.read_text())
    except (OSError, ValueError):
        pass
    found = _scan(module, top)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(found))
        tmp.replace(cache)
    except OSError:
        pass  # a read-only home: scan every time
    return found


def _scan(module: str, top: Path) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for file in _source_files(module):
        text = file.read_text(encoding="utf-8", errors="replace")
        if "register_module" not in text:
            continue
        for attr, name in _names_in(text):
            found.setdefault(attr, {}).setdefault(name, file.relative_to(top.parent).as_posix())
    return found


def stock_names(ref: RegistryRef) -> dict[str, str]:
    """Names the stock packages register into ``ref``, each with the file that does it."""
    attr = REGISTRY_ATTRIBUTES[ref.name]
    if ref.scope == ROOT_SCOPE:
        modules: tuple[str, ...] = ROOT_PACKAGES
    else:
        modules = registry_locations(ref.scope).get(attr, ())
    names: dict[str, str] = {}
    for module in modules:
        for name, where in _registered_in(module).get(attr, {}).items():
            names.setdefault(name, where)
    return names


def stock_owner(ref: RegistryRef) -> str:
    """The package whose own modules fill ``ref`` ("mmengine/mmcv" for the shared root)."""
    return "/".join(ROOT_PACKAGES) if ref.scope == ROOT_SCOPE else SCOPE_PACKAGES[ref.scope]


def stock_clashes(specs: Iterable[ModuleSpec]) -> list[StockClash]:
    """The (name, registry) pairs of ``specs`` that a stock package registers already.

    Reads source text only: no torch, no mmdet import. Registries of packages that are not
    installed have no stock names.
    """
    clashes = []
    for spec in specs:
        for ref in spec.registries:
            where = stock_names(ref).get(spec.name)
            if where is not None:
                clashes.append(StockClash(spec.name, ref, stock_owner(ref), where))
    return clashes
