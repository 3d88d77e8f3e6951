"""The documentation site builds with ``mkdocs build --strict`` (broken links, missing pages,
docstrings mkdocstrings cannot read fail it), and its generated CLI reference documents every
subcommand of :func:`cplugins.cli.build_parser`."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from cplugins.cli import build_parser

REPO = Path(__file__).resolve().parents[1]


def command_paths(parser: argparse.ArgumentParser,
                  path: tuple[str, ...] = ("cplugins",)) -> Iterator[tuple[str, ...]]:
    """Every subcommand below ``parser``, as ``("cplugins", "data", "check")``, depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name)
                yield from command_paths(sub, (*path, name))


def test_site_builds_strict_and_documents_every_command(tmp_path):
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml"),
         "-d", str(site)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stdout + result.stderr

    cli_page = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    commands = list(command_paths(build_parser()))
    assert len(commands) >= 12, commands
    missing = [" ".join(path) for path in commands
               if f'id="{"-".join(path)}"' not in cli_page or " ".join(path) not in cli_page]
    assert not missing, f"not in the built CLI reference: {missing}"

    zoo_page = (site / "plugins" / "augfpn-zoo" / "index.html").read_text(encoding="utf-8")
    assert "faster-rcnn_r50_augfpn_1x_coco" in zoo_page  # the generated zoo README, included
    api_page = (site / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    assert "cplugins.spec.ModuleSpec" in api_page  # mkdocstrings rendered the core modules
