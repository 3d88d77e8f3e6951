"""Helpers the tests import (conftest.py holds the fixtures)."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: the plugin distributions of this repository, one folder each
PLUGIN_DIRS = sorted(p.parent for p in REPO.glob("*/*/pyproject.toml"))


def run_python(code: str, site: Path | None = None, env: dict | None = None,
               cwd: Path | None = None, args: list[str] | None = None,
               timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -c code`` (or ``python args``) with ``site`` first on sys.path."""
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith("CPLUGINS_") or k == "CPLUGINS_COMPAT"}  # conftest's opt-in
    if site is not None:
        full_env["PYTHONPATH"] = str(site)
    full_env.update(env or {})
    command = [sys.executable, *(args if args is not None else ["-c", code])]
    return subprocess.run(command, capture_output=True, text=True, env=full_env,
                          cwd=cwd or REPO, timeout=timeout)


def build_wheels(projects, wheels: Path) -> list[Path]:
    """Build the wheels of the source folders ``projects`` in one ``pip wheel`` call into
    ``wheels``; returns them. Serialised across pytest-xdist workers: setuptools builds in the
    source folder's ``build/``, and two builds of one folder at once delete each other's
    files."""
    from filelock import FileLock

    with FileLock(Path(tempfile.gettempdir()) / "cplugins-tests-wheel-build.lock"):
        subprocess.run([sys.executable, "-m", "pip", "-q", "wheel", "--no-deps",
                        "--no-build-isolation", "-w", str(wheels), *map(str, projects)],
                       check=True, capture_output=True)
    return sorted(Path(wheels).glob("*.whl"))


def install_wheels(projects, wheels: Path, target: Path) -> list[Path]:
    """Build the wheels of the source folders ``projects`` (:func:`build_wheels`) and install
    them (no dependencies) into ``target``; returns the wheels."""
    built = build_wheels(projects, wheels)
    subprocess.run([sys.executable, "-m", "pip", "-q", "install", "--no-deps", "--no-compile",
                    "--target", str(target), *map(str, built)], check=True, capture_output=True)
    return built


def count_calls(*modules) -> list[int]:
    """A list whose entries count the forward calls of the torch ``modules`` from now on."""
    counts = [0] * len(modules)
    for i, module in enumerate(modules):
        module.register_forward_hook(lambda *_, i=i: counts.__setitem__(i, counts[i] + 1))
    return counts
