"""A plugin adds ``cplugins`` commands the way cplugins' own optional parts do
(``cplugins_commands``), and one whose commands fail to build breaks nothing else: two small
distributions, built as wheels and installed into a temporary target, driven through the
public command."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from helpers import install_wheels, run_python

GOOD = '''
from cplugins import hookimpl


def _hello(args):
    print(f"hello {args.name} from acme")
    return 3


@hookimpl
def cplugins_commands(subparsers):
    parser = subparsers.add_parser("acme-hello", help="say hello (acme plugin)")
    parser.add_argument("name")
    parser.set_defaults(func=_hello)
'''
BROKEN = '''
from cplugins import hookimpl


@hookimpl
def cplugins_commands(subparsers):
    subparsers.add_parser("list", help="takes a name cplugins already uses")  # conflicts
'''


def _distribution(root: Path, name: str, hook_module: str) -> Path:
    package = name.replace("-", "_")
    folder = root / name
    (folder / package).mkdir(parents=True)
    (folder / package / "__init__.py").write_text("")
    (folder / package / "plugin.py").write_text(textwrap.dedent(hook_module))
    (folder / "pyproject.toml").write_text(textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools>=64"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{name}"
        version = "0.1.0"
        dependencies = ["cplugins>=0.1"]

        [project.entry-points.cplugins]
        {package} = "{package}.plugin"

        [tool.setuptools]
        packages = ["{package}"]
        """))
    return folder


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("commands")
    projects = [_distribution(root, "acme-hello", GOOD),
                _distribution(root, "acme-broken-cli", BROKEN)]
    target = root / "site"
    install_wheels(projects, root / "wheels", target)
    return target


def cplugins(site: Path, *args: str):
    return run_python("", site, args=["-m", "cplugins.cli", *args])


def test_a_plugin_command_runs_with_its_exit_status(site):
    result = cplugins(site, "acme-hello", "world")
    assert result.returncode == 3, result.stderr
    assert result.stdout.strip() == "hello world from acme"
    assert "acme-hello" in cplugins(site, "--help").stdout


def test_a_plugin_whose_commands_fail_is_a_warning_not_a_broken_command(site):
    listing = cplugins(site, "list")
    assert "acme_broken_cli" in listing.stderr and "could not add its commands" in listing.stderr
    assert "acme-hello" in listing.stdout  # the other plugins are listed as usual
    result = cplugins(site, "acme-hello", "again")
    assert result.returncode == 3 and "hello again" in result.stdout
    assert "could not add its commands" in result.stderr
