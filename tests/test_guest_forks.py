"""Forks of OpenMMLab libraries (issue 22): a version range written for ``mmdet`` is checked
against whatever distribution provides the ``mmdet`` import package, so a fork installed under
another name (``onedl-mmdetection``) satisfies it, and a range it misses says which
distribution to upgrade. Isolated: ``python -S`` sees only a temporary target holding a fake
fork, two plugins, the core's dependencies (the venv and its real mmdet are not on the path)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest
from helpers import REPO

PLUGIN = """
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
dependencies = {dependencies}

[project.optional-dependencies]
openmmlab = {ranges}

[project.entry-points.cplugins]
{package} = "{package}.plugin"

[tool.setuptools.packages.find]
include = ["{package}*"]
"""
HOOKS = """from cplugins import ModuleSpec, hookimpl


@hookimpl
def cplugins_modules():
    return [ModuleSpec("{name}", "{package}.neck:{name}", "mmdet::model")]
"""


def _project(root: Path, dist: str, package: str, files: dict[str, str], pyproject: str) -> Path:
    folder = root / dist
    (folder / package).mkdir(parents=True)
    (folder / "pyproject.toml").write_text(pyproject)
    for name, text in files.items():
        (folder / package / name).write_text(text)
    return folder


@pytest.fixture(scope="module")
def fork_site(tmp_path_factory) -> Path:
    """onedl-mmdetection 3.3.0 (import package ``mmdet``), acme-forkok (``mmdet>=3.0,<3.4`` in
    its ``openmmlab`` extra) and acme-forknew (``mmdet>=3.4`` required), pip-installed."""
    root = tmp_path_factory.mktemp("fork_projects")
    fork = _project(root, "onedl-mmdetection", "mmdet", {"__init__.py": "__version__ = '3.3.0'\n"},
                    '[build-system]\nrequires = ["setuptools>=64"]\n'
                    'build-backend = "setuptools.build_meta"\n[project]\n'
                    'name = "onedl-mmdetection"\nversion = "3.3.0"\n'
                    '[tool.setuptools.packages.find]\ninclude = ["mmdet*"]\n')
    plugins = []
    for dist, package, name, dependencies, ranges in (
            ("acme-forkok", "acme_forkok", "ForkOkNeck", ["cplugins"], ["mmdet>=3.0,<3.4"]),
            ("acme-forknew", "acme_forknew", "ForkNewNeck", ["cplugins", "mmdet>=3.4"], [])):
        plugins.append(_project(
            root, dist, package, {"__init__.py": "", "plugin.py": HOOKS.format(
                name=name, package=package)},
            PLUGIN.format(dist=dist, package=package, dependencies=json.dumps(dependencies),
                          ranges=json.dumps(ranges))))
    site = tmp_path_factory.mktemp("fork_site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile",
                    "--no-build-isolation", "--target", str(site), str(fork), *map(str, plugins)],
                   check=True, capture_output=True)
    venv_site = Path(sysconfig.get_paths()["purelib"])
    for pattern in ("pluggy", "pluggy-*.dist-info", "packaging", "packaging-*.dist-info",
                    "filelock", "filelock-*.dist-info", "wrapt", "wrapt-*.dist-info"):  # the core's
        for path in venv_site.glob(pattern):
            (site / path.name).symlink_to(path)
    return site


def _isolated(code: str, site: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CPLUGINS_")}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(REPO)])
    return subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                          env=env, timeout=120)


def test_a_fork_satisfies_a_range_written_for_upstream(fork_site):
    code = textwrap.dedent("""
        import json
        from importlib import metadata
        from cplugins import versions
        from cplugins.manager import get_manager
        manager = get_manager()
        manager.discover()
        print(json.dumps({
            "upstream_installed": any(d.metadata["Name"] == "mmdet"
                                      for d in metadata.distributions()),
            "provider": versions.provider("mmdet"),
            "plugins": {r.distribution: [r.status, r.error] for r in manager.records.values()
                        if not r.builtin}}))
    """)
    result = _isolated(code, fork_site)
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout)
    assert found["upstream_installed"] is False
    assert found["provider"] == ["onedl-mmdetection", "3.3.0"]
    assert found["plugins"]["acme-forkok"] == ["discovered", ""]
    status, error = found["plugins"]["acme-forknew"]
    assert status == "incompatible"
    assert "requires mmdet>=3.4 (mmdet installed 3.3.0 as onedl-mmdetection)" in error
    assert "install a release of onedl-mmdetection (it provides mmdet) in >=3.4" in error
    assert "pip install 'mmdet>=3.4'" not in error  # that would install upstream over the fork


def test_ranges_in_the_openmmlab_extra_are_not_forced_on_pip(fork_site):
    """The extra's requirements are checked by cplugins, but pip's plain install of the
    plugin does not pull upstream mmdet next to the fork (its Requires-Dist is conditional)."""
    requires = next(fork_site.glob("acme_forkok-*.dist-info")).joinpath("METADATA").read_text()
    lines = [line for line in requires.splitlines() if line.startswith("Requires-Dist: mmdet")]
    assert lines == ['Requires-Dist: mmdet<3.4,>=3.0; extra == "openmmlab"']
