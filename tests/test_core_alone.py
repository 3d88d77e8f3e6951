"""``pip install cplugins`` (the core, what a plugin depends on) works with only its declared
dependencies: no torch, no OpenMMLab, no optional part's packages. The built wheel is installed
into a folder and run by an interpreter without site-packages (``python -S``), next to exactly
the distributions ``dependencies`` names."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from helpers import install_wheels

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def core_site(tmp_path_factory) -> Path:
    """The cplugins wheel and its declared dependencies (linked from this environment)."""
    root = tmp_path_factory.mktemp("core")
    site = root / "site"
    install_wheels([REPO], root / "wheels", site)
    built = next(d for d in metadata.distributions(path=[str(site)])
                 if d.metadata["Name"] == "cplugins")
    requires = built.requires or []
    core = [re.match(r"[A-Za-z0-9_.\-]+", r)[0] for r in requires
            if "extra ==" not in r and ("python_version" not in r or sys.version_info < (3, 11))]
    for name in core:
        dist = metadata.distribution(name)
        tops = {f.parts[0] for f in dist.files or [] if f.parts and f.parts[0] != ".."}
        for top in tops:
            source = Path(dist.locate_file(top))
            if source.exists() and not (site / top).exists() and top != "__pycache__":
                (site / top).symlink_to(source)
    return site


def _run(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "CPLUGINS"))}
    env["PYTHONPATH"] = str(site)
    return subprocess.run([sys.executable, "-S", *args], env=env, capture_output=True,
                          text=True, cwd=site, timeout=120)


def test_the_core_imports_and_lists_without_the_stack(core_site):
    code = ("import sys, cplugins, cplugins.manager, cplugins.cli, cplugins.lock, "
            "cplugins.diagnose, cplugins.check, cplugins.scaffold\n"
            "from cplugins.manager import get_manager\n"
            "print(sorted(r.name for r in get_manager().discover()))\n"
            "print([m for m in ('torch', 'numpy', 'mmengine', 'optuna') if m in sys.modules])")
    result = _run(core_site, "-c", code)
    assert result.returncode == 0, result.stderr
    names, heavy = result.stdout.splitlines()[-2:]
    assert "cplugins-tune" in names and "builtin" in names
    assert heavy == "[]"
    stock = _run(core_site, "-c", "import torch")
    assert stock.returncode != 0  # really without the stack


def test_the_command_lists_every_command_and_names_the_missing_extra(core_site):
    help_ = _run(core_site, "-m", "cplugins.cli", "--help")
    assert help_.returncode == 0, help_.stderr
    for command in ("list", "check", "new", "tune", "bench", "templates", "render", "data"):
        assert re.search(rf"\b{command}\b", help_.stdout), command
    listing = _run(core_site, "-m", "cplugins.cli", "list")
    assert listing.returncode == 0, listing.stdout + listing.stderr
    tune = _run(core_site, "-m", "cplugins.cli", "tune", "MMDetection_YOLOX", "--trials", "1",
                "--metric", "coco/bbox_mAP")
    assert tune.returncode == 2, tune.stdout + tune.stderr
    assert "pip install 'cplugins[tune]'" in tune.stderr
    assert "Traceback" not in tune.stderr
