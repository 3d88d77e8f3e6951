"""mmpretrain and mmseg plugins as easy as mmdet ones (issue 22): ``cplugins new`` writes them,
``cplugins check`` checks each module in the scope it registers into, with inputs that fit the
library's head API, and reports a module registered into another library's scope. As an author
uses it: generate, build wheels, install into a temporary target, check, run the generated
tests (unit tests, contract checks, 2-iteration trainings with the library's stock Runner)."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from helpers import install_wheels, run_python

from cplugins.scaffold import new_project, snake_case

#: (scope, kind) -> class name; hooks are the same code in every scope (tests/test_scaffold.py)
PROJECTS = {("mmpretrain", "backbone"): "AcmeClsBackbone", ("mmpretrain", "neck"): "AcmeGeMNeck",
            ("mmpretrain", "loss"): "AcmePolyLoss", ("mmpretrain", "dataset"): "AcmeClsDataset",
            ("mmpretrain", "transform"): "AcmeClsNoise", ("mmseg", "backbone"): "AcmeSegBackbone",
            ("mmseg", "neck"): "AcmeSegNeck", ("mmseg", "loss"): "AcmeDiceLoss",
            ("mmseg", "dataset"): "AcmeSegDataset", ("mmseg", "transform"): "AcmeSegNoise"}
#: written with the real command: the heads, by their library's name for them
COMMANDS = {("mmpretrain", "head"): ["cls_head", "AcmeCosClsHead"],
            ("mmseg", "head"): ["head", "AcmeFuseHead", "--scope", "mmseg"]}
WRONG = "AcmeWrongHead"  # an mmpretrain ClsHead its author registered into mmdet::model


def cplugins(*args: str, site: Path | None = None, cwd: Path | None = None):
    return run_python("", site, cwd=cwd, args=["-m", "cplugins.cli", *args])


def dist(name: str) -> str:
    return snake_case(name).replace("_", "-")


@pytest.fixture(scope="module")
def projects(tmp_path_factory) -> dict[tuple[str, str], Path]:
    root = tmp_path_factory.mktemp("scoped")
    found = {}
    for key, args in COMMANDS.items():
        result = cplugins("new", *args, "--dir", str(root / "-".join(key)))
        assert result.returncode == 0, result.stderr
        found[key] = root / "-".join(key)
    for (scope, kind), name in PROJECTS.items():
        found[scope, kind] = new_project(kind, name, root / f"{scope}-{kind}", scope)
    wrong = new_project("cls_head", WRONG, root / "wrong")
    plugin = wrong / snake_case(WRONG) / "plugin.py"
    plugin.write_text(plugin.read_text().replace('"mmpretrain::model"', '"mmdet::model"'))
    found["wrong", "head"] = wrong
    return found


@pytest.fixture(scope="module")
def site(projects, tmp_path_factory) -> Path:
    """Every project's wheel built in one ``pip wheel`` call, installed into one target."""
    target = tmp_path_factory.mktemp("scoped_site")
    built = install_wheels(projects.values(), tmp_path_factory.mktemp("scoped_wheels"), target)
    assert len(built) == len(projects), built
    return target


def test_layout_per_library(projects):
    for (scope, kind), project in projects.items():
        if scope == "wrong":
            continue
        package = snake_case(PROJECTS.get((scope, kind)) or COMMANDS[scope, kind][1])
        prefix = {"mmpretrain": "classifier", "mmseg": "segmentor"}[scope]
        files = {p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()}
        assert {f"{package}/{kind}.py", f"configs/{prefix}_{package}_shapes.py",
                "tests/conftest.py", f"tests/test_{kind}.py"} <= files, files
        registry = f"{scope}::{'model' if kind in ('backbone', 'neck', 'head', 'loss') else kind}"
        assert f'"{registry}"' in (project / package / "plugin.py").read_text()
        pyproject = (project / "pyproject.toml").read_text()
        assert "openmmlab = [" in pyproject and "dependencies = [\"cplugins" in pyproject
    assert "from mmpretrain.models.heads import ClsHead" in (
        projects["mmpretrain", "head"] / "acme_cos_cls_head" / "head.py").read_text()
    decode_head = projects["mmseg", "head"] / "acme_fuse_head" / "head.py"
    assert "(BaseDecodeHead)" in decode_head.read_text()


def test_check_passes_in_each_scope_and_fails_the_wrong_scope(site):
    names = [*PROJECTS.values(), *(args[1] for args in COMMANDS.values())]
    result = cplugins("check", *map(dist, names), "--json", site=site)
    report = json.loads(result.stdout)
    bad = [r for r in report["results"] if r["status"] in ("fail", "warn")]
    assert result.returncode == 0 and report["ok"] and not bad, bad or result.stderr[-3000:]
    by_id = {r["id"]: r for r in report["results"]}
    head = by_id["acme-cos-cls-head::AcmeCosClsHead -> mmpretrain::model::run"]
    assert head["status"] == "pass" and head["message"].startswith("loss+backward on feats")
    decode = by_id["acme-fuse-head::AcmeFuseHead -> mmseg::model::run"]
    assert decode["status"] == "pass" and decode["message"].startswith("loss+backward on [")
    assert by_id["acme-dice-loss::AcmeDiceLoss -> mmseg::model::run"]["status"] == "pass"
    assert by_id["acme-cls-dataset::AcmeClsDataset -> mmpretrain::dataset::run"][
        "message"].startswith("3 items")

    result = cplugins("check", dist(WRONG), site=site)
    assert result.returncode == 1
    line = next(x for x in result.stdout.splitlines() if x.startswith("FAIL"))
    assert line.startswith("FAIL  kind              AcmeWrongHead -> mmdet::model: "
                           "AcmeWrongHead subclasses mmpretrain's ClsHead "
                           "(mmpretrain.models.heads.cls_head) but registers into mmdet::model")
    assert "Fix: register it into mmpretrain::model" in line
    listed = run_python("", site, env={"CPLUGINS_LOAD_PLUGINS": dist(WRONG)},
                        args=["-m", "cplugins.cli", "list", "--activate"])
    assert listed.returncode == 1
    assert "WRONG SCOPE: acme-wrong-head 0.1.0: AcmeWrongHead subclasses mmpretrain's ClsHead" \
        in listed.stdout


@pytest.mark.slow
def test_generated_tests_pass_and_train_with_the_stock_runners(projects, site, tmp_path):
    """One pytest process over every project's tests folder (installed wheels, the projects'
    own tests/conftest.py loading cplugins.testing): unit tests, contract checks and each
    config's 2-iteration training with mmpretrain's / mmseg's Runner."""
    folders = [str(p / "tests") for key, p in projects.items() if key[0] != "wrong"]
    report = tmp_path / "junit.xml"
    result = run_python("", site, cwd=tmp_path, env={"CPLUGINS_COMPAT": "0"}, args=[
        "-m", "pytest", "-q", "-p", "no:cacheprovider", "--import-mode=importlib",
        "-o", "junit_family=xunit1", f"--junitxml={report}", *folders])
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    outcome: dict[str, list[str]] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        status = next((c.tag for c in case if c.tag in ("failure", "error", "skipped")),
                      "passed")
        outcome.setdefault(case.get("name").split("[")[0], []).append(status)
    assert outcome["test_config_trains_two_iterations"] == ["passed"] * len(folders)
    assert "failure" not in outcome["test_contract"] and "error" not in outcome["test_contract"]
    unit = [s for name, statuses in outcome.items() for s in statuses
            if name not in ("test_contract", "test_config_trains_two_iterations")]
    assert len(unit) >= 2 * len(folders) and set(unit) == {"passed"}, outcome


@pytest.mark.parametrize("args, message", [
    (["new", "cls_head", "Foo", "--scope", "mmseg"],
     "KIND 'cls_head' is a mmpretrain kind, but --scope mmseg was given"),
    (["new", "head", "Foo", "--scope", "mmfoo"],
     "unknown --scope 'mmfoo'; allowed: mmdet, mmpretrain, mmseg"),
    (["new", "head", "LinearClsHead", "--scope", "mmpretrain"],
     "NAME 'LinearClsHead' is mmpretrain's own in mmpretrain::model"),
])
def test_bad_scope_arguments_are_one_clear_line(args, message, tmp_path):
    result = cplugins(*args, "--dir", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
