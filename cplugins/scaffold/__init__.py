"""``cplugins new KIND NAME``: a complete plugin distribution from a copier template.

The template (``template/``, rendered by `copier <https://copier.readthedocs.io>`_) holds one
project per KIND: pyproject with ``[build-system]`` and the ``cplugins`` entry point, the light
hook module, a small real module of that kind, a config that trains it on the embedded
synthetic shapes, a benchmark case or check example, a README and tests on
:mod:`cplugins.testing`. Light: copier is imported only when a project is generated.
"""
from __future__ import annotations

import importlib.util
import keyword
import re
from pathlib import Path

from cplugins.errors import CPluginsError

TEMPLATE = Path(__file__).with_name("template")
#: KIND -> the registry its module goes into
KINDS: dict[str, str] = {
    "backbone": "mmdet::model",
    "neck": "mmdet::model",
    "head": "mmdet::model",
    "loss": "mmdet::model",
    "dataset": "mmdet::dataset",
    "hook": "hook",
    "transform": "mmdet::transform",
}


class ScaffoldError(CPluginsError):
    """Bad KIND, NAME or destination for ``cplugins new``."""


def snake_case(name: str) -> str:
    """``MyNeck`` -> ``my_neck``, ``AcmeFPNNeck`` -> ``acme_fpn_neck``."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    return re.sub(r"_+", "_", text).strip("_").lower()


def answers(kind: str, name: str) -> dict[str, str]:
    """The template's answers for KIND and NAME; raises :class:`ScaffoldError` on bad input."""
    from cplugins import __version__

    if kind not in KINDS:
        raise ScaffoldError(f"unknown KIND {kind!r}; allowed: {', '.join(KINDS)}")
    if not name.isidentifier() or keyword.iskeyword(name):
        raise ScaffoldError(f"NAME {name!r} is not a Python identifier (it becomes the class "
                            "name and type= in configs), e.g. MyNeck")
    package = snake_case(name)
    if not package.isidentifier() or keyword.iskeyword(package):
        raise ScaffoldError(f"NAME {name!r} gives the package name {package!r}, which is not a "
                            "Python identifier; choose another NAME")
    clash = _stock_clash(name, KINDS[kind])
    if clash:
        raise ScaffoldError(f"NAME {name!r} is {clash}; a plugin module under that name would "
                            "make configs ambiguous, choose another NAME")
    if importlib.util.find_spec(package) is not None:
        raise ScaffoldError(f"NAME {name!r} gives the package name {package!r}, which is "
                            "already importable here (another module has it); choose another "
                            "NAME")
    return {"kind": kind, "name": name, "package": package,
            "distribution": package.replace("_", "-"), "registry": KINDS[kind],
            "cplugins_version": __version__}


def _stock_clash(name: str, registry: str) -> str:
    """Where the stock packages register ``name`` in ``registry`` already ("" if nowhere);
    read from their sources, nothing imported."""
    from cplugins.spec import ModuleSpec
    from cplugins.stock import stock_clashes

    clashes = stock_clashes([ModuleSpec(name, "scaffold.placeholder:Name", registry)])
    return "; ".join(f"{c.owner}'s own in {c.registry} ({c.where})" for c in clashes)


def new_project(kind: str, name: str, dest: str | Path | None = None) -> Path:
    """Render the project for KIND and NAME into ``dest`` (default: ``./<distribution>``),
    which must not exist or be empty; returns its path."""
    data = answers(kind, name)
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
