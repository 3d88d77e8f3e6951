"""Shared fixtures: real plugin wheels built from this repo, installed into temporary targets."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import PLUGIN_DIRS, REPO, build_wheels

FIXTURE_DISTS = REPO / "tests" / "fixtures" / "dists"
#: one small distribution per failure a third-party plugin author hit (issue 12)
AUTHOR_FIXTURES = ("selfimport", "stockclash", "badspec", "heavyhook", "oldstack", "lockfix")


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "-q", *args], check=True,
                   capture_output=True, text=True)


@pytest.fixture(scope="session")
def wheel_dir(tmp_path_factory) -> Path:
    """Wheels of cplugins, every plugin distribution and the test fixture distributions,
    built once into one folder: what ``make wheels`` puts into ``dist/``."""
    out = tmp_path_factory.mktemp("wheels")
    sources = [REPO, *PLUGIN_DIRS, *(FIXTURE_DISTS / d for d in
                                     ("conflict", "broken_hooks", "broken_module",
                                      *AUTHOR_FIXTURES))]
    build_wheels(sources, out)
    return out


@pytest.fixture(scope="session")
def wheels(wheel_dir) -> dict[str, Path]:
    """Built wheels by import-name-style distribution name, e.g. ``cplugins_augfpn``."""
    return {w.name.split("-")[0]: w for w in wheel_dir.glob("*.whl")}


def install_target(tmp_path_factory, name: str, wheels: list[Path]) -> Path:
    target = tmp_path_factory.mktemp(name)
    pip("install", "--no-deps", "--no-compile", "--target", str(target), *map(str, wheels))
    return target


@pytest.fixture(scope="session")
def site_ok(tmp_path_factory, wheels) -> Path:
    """cplugins-augfpn alone."""
    return install_target(tmp_path_factory, "site_ok", [wheels["cplugins_augfpn"]])


@pytest.fixture(scope="session")
def site_broken(tmp_path_factory, wheels) -> Path:
    """cplugins-augfpn plus a plugin that raises on import and one whose module does."""
    return install_target(tmp_path_factory, "site_broken", [
        wheels["cplugins_augfpn"], wheels["cplugins_broken_hooks_fixture"],
        wheels["cplugins_broken_module_fixture"]])


@pytest.fixture(scope="session")
def site_conflict(tmp_path_factory, wheels) -> Path:
    """cplugins-augfpn plus a distribution that provides another 'AugFPN'."""
    return install_target(tmp_path_factory, "site_conflict", [
        wheels["cplugins_augfpn"], wheels["cplugins_conflict_fixture"]])


@pytest.fixture(scope="session")
def site_authors(tmp_path_factory, wheels) -> Path:
    """The issue-12 fixture distributions, one per failure; tests pick theirs with
    CPLUGINS_LOAD_PLUGINS."""
    return install_target(tmp_path_factory, "site_authors", [
        wheels[f"cplugins_{name}_fixture"] for name in AUTHOR_FIXTURES])
