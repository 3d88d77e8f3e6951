"""The layer contract (.importlinter) holds, and places every module of the package."""
from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _contract() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(REPO / ".importlinter")
    return parser


def test_lint_imports_keeps_every_contract():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint_imports), "--config", str(REPO / ".importlinter")],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_every_module_is_in_the_core_or_an_optional_part():
    """A new top-level module or package must be placed: core (source_modules of the closed
    core) or optional (forbidden to the core), so the contract cannot silently miss it."""
    closed = _contract()["importlinter:contract:core-is-closed"]
    core = set(closed["source_modules"].split())
    optional = {m for m in closed["forbidden_modules"].split() if m.startswith("cplugins.")}
    package = REPO / "cplugins"
    modules = {f"cplugins.{p.stem}" for p in package.glob("*.py") if p.stem != "__init__"}
    modules |= {f"cplugins.{p.parent.name}" for p in package.glob("*/__init__.py")}
    unplaced = sorted(modules - core - optional)
    assert not unplaced, f"place these in .importlinter (core or optional): {unplaced}"
    assert not core & optional
