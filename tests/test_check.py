"""``cplugins check``: every contract violation is reported with its fix, from small broken
distributions (tests/fixtures/dists/check_*) built into wheels and installed into a target;
a good module in the same distribution passes every check (no false alarm)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import REPO, install_wheels, run_python

FIXTURES = REPO / "tests" / "fixtures" / "dists"


def cplugins(*args: str, site: Path | None = None):
    return run_python("", site, args=["-m", "cplugins.cli", *args])


@pytest.fixture(scope="module")
def check_site(tmp_path_factory) -> Path:
    wheels = tmp_path_factory.mktemp("check_wheels")
    site = tmp_path_factory.mktemp("check_site")
    install_wheels([FIXTURES / "check_violations", FIXTURES / "check_heavy"], wheels, site)
    return site


@pytest.fixture(scope="module")
def report(check_site) -> dict:
    result = cplugins("check", "cplugins-check-violations", "cplugins-check-heavy", "--json",
                      site=check_site)
    assert result.returncode == 1, result.stderr[-3000:]
    data = json.loads(result.stdout)  # nothing but JSON on stdout
    assert data["ok"] is False
    return {r["id"]: r for r in data["results"]}


VIOLATIONS = "cplugins-check-violations"


def _model(name: str, check: str) -> str:
    return f"{VIOLATIONS}::{name} -> mmdet::model::{check}"


def test_good_module_passes_every_check(report):
    statuses = {check: report[_model("GoodLinear", check)]["status"] for check in (
        "import", "kind", "clash", "register", "build", "run", "deepcopy", "pickle",
        "state_dict")}
    assert set(statuses.values()) == {"pass"}, statuses


@pytest.mark.parametrize("subject, check, message, fix", [
    (_model("NotAModule", "kind"), "kind",
     "is NotAModule, not a torch.nn.Module subclass, which the mmdet::model registry holds",
     "subclass the right base"),
    (f"{VIOLATIONS}::NotAHook -> mmengine::hook::kind", "kind",
     "is GoodLinear (Module), not an mmengine.hooks.Hook subclass", "subclass the right base"),
    (_model("FPN", "clash"), "clash", "'FPN' is already taken in mmdet::model (visible from "
     "it) by mmdet's stock mmdet.models.necks.fpn.FPN", "give the module a name of its own"),
    (_model("SharedName", "clash"), "clash",
     "'SharedName' in mmdet::model is also declared by cplugins-check-heavy 0.0.1",
     "give the module a name of its own"),
    (_model("Missing", "import"), "import", "ModuleNotFoundError: No module named "
     "'check_violations_fixture.nowhere'", "make 'check_violations_fixture.nowhere:Missing' "
     "importable"),
    (_model("Detached", "run"), "run", "none of its 2 parameters received a gradient",
     "no .detach()"),
    (_model("Unpicklable", "pickle"), "pickle", "Can't", "keep module state picklable"),
    (_model("HiddenState", "state_dict"), "state_dict",
     "after loading the state_dict into a fresh instance, outputs differ",
     "parameters or registered buffers"),
    ("cplugins-check-heavy::light", "light", "check_heavy_fixture.plugin pulls in torch",
     "import only cplugins in the hook module"),
    ("cplugins-check-heavy::versions", "versions", "requires mmdet<3.0,>=2.0 (mmdet installed "
     "3.3.0)", "pip install"),
])
def test_each_violation_is_reported_with_its_fix(report, subject, check, message, fix):
    result = report[subject]
    assert result["status"] == "fail", result
    assert result["check"] == check
    assert message in result["message"], result["message"]
    assert fix in result["fix"], result["fix"]


def test_later_checks_are_skipped_not_failed_after_a_broken_import(report):
    after = [report[_model("Missing", c)]["status"] for c in ("kind", "build", "run")]
    assert after == ["skip", "skip", "skip"]


def test_module_without_example_is_a_warning_with_the_fix(report):
    result = report[_model("NoExample", "build")]
    assert result["status"] == "warn"
    assert "cplugins_examples" in result["fix"]


def test_path_must_be_installed():
    result = cplugins("check", str(FIXTURES / "check_violations"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert ("'cplugins-check-violations' (from " in result.stderr
            and "is not installed" in result.stderr and "pip install" in result.stderr)


def test_path_is_compared_with_its_installed_distribution_text_output(check_site, tmp_path):
    """PATH whose pyproject no longer matches the installed wheel: reported as stale; text
    output is one line per check with its fix; exit status 1."""
    source = tmp_path / "src"
    source.mkdir()
    text = (FIXTURES / "check_heavy" / "pyproject.toml").read_text()
    (source / "pyproject.toml").write_text(text.replace(
        'checkheavy = "check_heavy_fixture.plugin"', 'checkheavy = "check_heavy_fixture.hooks"'))
    result = cplugins("check", str(source), site=check_site)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("FAIL  source") and "Fix: reinstall: pip install" in lines[0]
    light = [line for line in lines if line.split()[1:2] == ["light"]]
    assert len(light) == 1 and light[0].startswith("FAIL")
    assert "Fix: import only cplugins in the hook module" in light[0]
    assert len(lines) == 2 + 3 + 9  # source, 3 distribution checks, 9 for its one module


def test_unknown_distribution_is_one_clear_line():
    result = cplugins("check", "no-such-dist")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "'no-such-dist' is neither an installed distribution nor a folder" in result.stderr
