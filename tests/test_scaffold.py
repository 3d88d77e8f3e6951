"""``cplugins new`` for every KIND, as an author uses it: generate, build the wheels, install
them into a temporary target, ``cplugins check`` them, run the generated tests (contract
checks, unit tests, a 2-iteration training each). Affordable: one session fixture generates
all seven projects, builds their wheels in one ``pip wheel`` and installs them in one target;
one ``cplugins check`` and one pytest process cover all of them."""
from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from helpers import REPO, run_python

from cplugins.scaffold import KINDS, snake_case

NAMES = {"backbone": "AcmeBackbone", "neck": "AcmeNeck", "head": "AcmeHead",
         "loss": "AcmeLoss", "dataset": "AcmeDataset", "hook": "AcmeHook",
         "transform": "AcmeTransform"}


def cplugins(*args: str, site: Path | None = None, cwd: Path | None = None):
    return run_python("", site, cwd=cwd, args=["-m", "cplugins.cli", *args])


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict[str, Path]:
    """The seven projects, generated with the real command."""
    root = tmp_path_factory.mktemp("generated")
    projects = {}
    for kind, name in NAMES.items():
        result = cplugins("new", kind, name, "--dir", str(root / kind))
        assert result.returncode == 0, result.stderr
        assert f"created {root / kind}" in result.stdout
        projects[kind] = root / kind
    return projects


@pytest.fixture(scope="module")
def generated_site(generated, tmp_path_factory) -> Path:
    """All seven wheels built in one ``pip wheel`` call, installed into one target."""
    wheels = tmp_path_factory.mktemp("generated_wheels")
    site = tmp_path_factory.mktemp("generated_site")
    pip = [sys.executable, "-m", "pip", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels),
                    *map(str, generated.values())], check=True, capture_output=True)
    built = sorted(wheels.glob("*.whl"))
    assert len(built) == len(KINDS), built
    subprocess.run([*pip, "install", "--no-deps", "--no-compile", "--target", str(site),
                    *map(str, built)], check=True, capture_output=True)
    return site


def test_project_layout_and_light_hook_module(generated):
    for kind, project in generated.items():
        package = snake_case(NAMES[kind])
        files = {p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()}
        assert {"pyproject.toml", "README.md", f"{package}/__init__.py",
                f"{package}/plugin.py", f"{package}/{kind}.py",
                f"configs/faster-rcnn_{package}_shapes.py", "tests/test_contract.py",
                "tests/test_train.py", f"tests/test_{kind}.py"} <= files, (kind, files)
        assert not any(f.endswith(".jinja") for f in files)
        other_kinds = {f"{package}/{k}.py" for k in KINDS if k != kind}
        assert not other_kinds & files
        plugin = (project / package / "plugin.py").read_text()
        assert "import torch" not in plugin and "mmdet" not in plugin.split("def ")[0]
        pyproject = (project / "pyproject.toml").read_text()
        assert "[build-system]" in pyproject and "[project.entry-points.cplugins]" in pyproject


def test_generated_code_is_lint_clean(generated):
    result = subprocess.run([str(Path(sys.executable).with_name("ruff")), "check",
                             "--no-cache", "--line-length", "100", *map(str, generated.values())],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_generated_plugins_pass_cplugins_check(generated_site):
    distributions = [snake_case(n).replace("_", "-") for n in NAMES.values()]
    result = cplugins("check", *distributions, "--json", site=generated_site)
    report = json.loads(result.stdout)
    bad = [r for r in report["results"] if r["status"] in ("fail", "warn")]
    assert result.returncode == 0 and report["ok"] and not bad, bad or result.stderr[-3000:]
    by_id = {r["id"]: r for r in report["results"]}
    # the model kinds ran forward/backward and a state_dict round trip from their bench case
    for kind in ("backbone", "neck", "head", "loss"):
        subject = f"{NAMES[kind]} -> mmdet::model"
        assert by_id[f"{subject}::run"]["status"] == "pass"
        assert "benchmark case" in by_id[f"{subject}::build"]["message"]
        assert "same outputs" in by_id[f"{subject}::state_dict"]["message"]
    assert by_id["AcmeHook -> mmengine::hook::kind"]["status"] == "pass"
    assert by_id["AcmeDataset -> mmdet::dataset::run"]["message"].startswith("2 items")
    assert by_id["AcmeTransform -> mmdet::transform::run"]["status"] == "pass"
    for dist in distributions:
        assert "no heavy package" in by_id[f"{dist}::light"]["message"]


@pytest.mark.slow
def test_generated_tests_pass_and_each_trains_two_iterations(generated, generated_site,
                                                              tmp_path):
    """One pytest process for the seven projects' own tests (cplugins.testing fixtures from
    the pytest11 entry point), with the wheels installed, not the source folders."""
    report = tmp_path / "junit.xml"
    result = run_python("", generated_site, cwd=tmp_path, args=[
        "-m", "pytest", "-q", "-p", "no:cacheprovider", "--import-mode=importlib",
        f"--junitxml={report}", *(str(p / "tests") for p in generated.values())])
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    cases = ET.parse(report).getroot().iter("testcase")
    outcome = {}
    for case in cases:
        status = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                status = child.tag
        outcome[(case.get("classname"), case.get("name"))] = status
    for kind, project in generated.items():
        train = [s for (cls, name), s in outcome.items()
                 if f"{kind}.tests.test_train" in cls
                 and name == "test_config_trains_two_iterations"]
        assert train == ["passed"], (kind, outcome)
        unit = [s for (cls, _), s in outcome.items() if cls.endswith(f"test_{kind}")]
        assert unit and set(unit) == {"passed"}, (kind, unit)
        contract = [s for (cls, _), s in outcome.items()
                    if f"{kind}.tests.test_contract" in cls]
        assert contract.count("passed") >= 8 and "failure" not in contract, (kind, contract)


@pytest.mark.parametrize("args, message", [
    (["new", "model", "Foo"], "unknown KIND 'model'; allowed: backbone, neck, head, loss, "
                              "dataset, hook, transform"),
    (["new", "neck", "my-neck"], "NAME 'my-neck' is not a Python identifier"),
    (["new", "neck", "class"], "NAME 'class' is not a Python identifier"),
    (["new", "neck", "Torch"], "package name 'torch', which is already importable"),
])
def test_bad_arguments_are_one_clear_line(args, message, tmp_path):
    result = cplugins(*args, "--dir", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_existing_non_empty_dir_is_refused(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    result = cplugins("new", "neck", "MyNeck", "--dir", str(tmp_path / "taken"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "exists and is not an empty folder" in result.stderr
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["notes.txt"]


def test_default_dir_is_the_distribution_name(tmp_path):
    result = cplugins("new", "loss", "MyLoss", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "my-loss" / "my_loss" / "loss.py").is_file()


def test_pytest_plugin_is_registered_and_light():
    code = ("import sys\nfrom importlib.metadata import entry_points\n"
            "eps = {ep.value for ep in entry_points(group='pytest11')}\n"
            "assert 'cplugins.testing' in eps, eps\n"
            "import cplugins.testing, cplugins.scaffold, cplugins.check.cli\n"
            "heavy = [m for m in ('torch', 'mmengine', 'mmdet', 'copier') if m in sys.modules]\n"
            "print('HEAVY', heavy)\n")
    result = run_python(code, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout
