"""``cplugins new KIND NAME [--scope mmdet|mmpretrain|mmseg]``: a complete plugin distribution
from a copier template.

The template (``template/``, rendered by `copier <https://copier.readthedocs.io>`_) holds one
project per KIND and library: pyproject with ``[build-system]`` and the ``cplugins`` entry
point, the light hook module, a small real module of that kind, a config that trains it on the
embedded synthetic shapes (detection, classification or segmentation) with the library's stock
Runner, a benchmark case or check example, a README and tests on :mod:`cplugins.testing`.
Light: copier is imported only when a project is generated.
"""
from __future__ import annotations

import importlib.util
import keyword
import re
from pathlib import Path

from cplugins.errors import CPluginsError

TEMPLATE = Path(__file__).with_name("template")
#: the libraries a plugin can be written for (``--scope``), mmdet by default
SCOPES: tuple[str, ...] = ("mmdet", "mmpretrain", "mmseg")
_KIND_NAMES = ("backbone", "neck", "head", "loss", "dataset", "hook", "transform")
#: SCOPE -> KIND -> the registry its module goes into
SCOPE_KINDS: dict[str, dict[str, str]] = {
    scope: {kind: ("hook" if kind == "hook" else
                   f"{scope}::{'model' if kind in ('backbone', 'neck', 'head', 'loss') else kind}")
            for kind in _KIND_NAMES}
    for scope in SCOPES}
#: KIND -> registry of the default scope (mmdet)
KINDS: dict[str, str] = SCOPE_KINDS["mmdet"]
#: KIND names that imply their scope: ``cplugins new cls_head NAME``
ALIASES: dict[str, tuple[str, str]] = {"bbox_head": ("mmdet", "head"),
                                       "cls_head": ("mmpretrain", "head"),
                                       "decode_head": ("mmseg", "head")}
#: what each kind is in each library (README, docstrings)
DESCRIPTIONS: dict[tuple[str, str], str] = {
    ("mmdet", "head"): "RoI box head (mmdet BBoxHead)",
    ("mmpretrain", "head"): "classification head (mmpretrain ClsHead)",
    ("mmseg", "head"): "decode head (mmseg BaseDecodeHead)",
    ("mmdet", "loss"): "box regression loss",
    ("mmpretrain", "loss"): "classification loss",
    ("mmseg", "loss"): "segmentation loss",
    ("mmpretrain", "neck"): "pooling neck",
}
#: the config each project trains its module in (file name prefix)
CONFIGS: dict[str, str] = {"mmdet": "faster-rcnn", "mmpretrain": "classifier",
                           "mmseg": "segmentor"}


class ScaffoldError(CPluginsError):
    """Bad KIND, NAME or destination for ``cplugins new``."""


def snake_case(name: str) -> str:
    """``MyNeck`` -> ``my_neck``, ``AcmeFPNNeck`` -> ``acme_fpn_neck``."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    return re.sub(r"_+", "_", text).strip("_").lower()


def resolve_kind(kind: str, scope: str | None = None) -> tuple[str, str]:
    """``(scope, kind)`` for KIND and ``--scope``; raises :class:`ScaffoldError` on bad input."""
    if scope is not None and scope not in SCOPES:
        raise ScaffoldError(f"unknown --scope {scope!r}; allowed: {', '.join(SCOPES)}")
    if kind in ALIASES:
        implied, base = ALIASES[kind]
        if scope not in (None, implied):
            raise ScaffoldError(f"KIND {kind!r} is a {implied} kind, but --scope {scope} was "
                                f"given; use KIND head with --scope {scope}")
        return implied, base
    if kind not in _KIND_NAMES:
        raise ScaffoldError(f"unknown KIND {kind!r}; allowed: {', '.join(_KIND_NAMES)} (with "
                            f"--scope {'|'.join(SCOPES)}, default mmdet), or "
                            f"{', '.join(ALIASES)}")
    return scope or "mmdet", kind


def answers(kind: str, name: str, scope: str | None = None) -> dict[str, str]:
    """The template's answers for KIND, NAME and SCOPE; raises :class:`ScaffoldError` on bad
    input."""
    from cplugins import __version__

    scope, kind = resolve_kind(kind, scope)
    registry = SCOPE_KINDS[scope][kind]
    if not name.isidentifier() or keyword.iskeyword(name):
        raise ScaffoldError(f"NAME {name!r} is not a Python identifier (it becomes the class "
                            "name and type= in configs), e.g. MyNeck")
    package = snake_case(name)
    if not package.isidentifier() or keyword.iskeyword(package):
        raise ScaffoldError(f"NAME {name!r} gives the package name {package!r}, which is not a "
                            "Python identifier; choose another NAME")
    clash = _stock_clash(name, registry)
    if clash:
        raise ScaffoldError(f"NAME {name!r} is {clash}; a plugin module under that name would "
                            "make configs ambiguous, choose another NAME")
    if importlib.util.find_spec(package) is not None:
        raise ScaffoldError(f"NAME {name!r} gives the package name {package!r}, which is "
                            "already importable here (another module has it); choose another "
                            "NAME")
    return {"kind": kind, "scope": scope, "name": name, "package": package,
            "distribution": package.replace("_", "-"), "registry": registry,
            "what": DESCRIPTIONS.get((scope, kind), kind),
            "config_name": f"{CONFIGS[scope]}_{package}_shapes",
            "cplugins_version": __version__}


def _stock_clash(name: str, registry: str) -> str:
    """Where the stock packages register ``name`` in ``registry`` already ("" if nowhere);
    read from their sources, nothing imported."""
    from cplugins.spec import ModuleSpec
    from cplugins.stock import stock_clashes

    clashes = stock_clashes([ModuleSpec(name, "scaffold.placeholder:Name", registry)])
    return "; ".join(f"{c.owner}'s own in {c.registry} ({c.where})" for c in clashes)


def new_project(kind: str, name: str, dest: str | Path | None = None,
                scope: str | None = None) -> Path:
    """Render the project for KIND, NAME and SCOPE (``mmdet``, ``mmpretrain``, ``mmseg``)
    into ``dest`` (default: ``./<distribution>``), which must not exist or be empty; returns
    its path."""
    data = answers(kind, name, scope)
    target = Path(dest) if dest is not None else Path.cwd() / data["distribution"]
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ScaffoldError(f"--dir {str(target)!r} exists and is not an empty folder; give a "
                            "new or empty folder")
    try:
        from copier import run_copy
    except ImportError:
        raise ScaffoldError("cplugins new renders its template with copier, which is not "
                            "installed: pip install 'cplugins[new]'") from None
    run_copy(str(TEMPLATE), str(target), data=data, defaults=True, quiet=True,
             overwrite=True, unsafe=False)
    return target
