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
from helpers import REPO, install_wheels, run_python

from cplugins.scaffold import KINDS, new_project, snake_case

NAMES = {"backbone": "AcmeBackbone", "neck": "AcmeNeck", "head": "AcmeHead",
         "loss": "AcmeLoss", "dataset": "AcmeDataset", "hook": "AcmeHook",
         "transform": "AcmeTransform"}


def cplugins(*args: str, site: Path | None = None, cwd: Path | None = None):
    return run_python("", site, cwd=cwd, args=["-m", "cplugins.cli", *args])


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict[str, Path]:
    """The seven projects: the neck with the real command, the others in this process (the
    same function, without paying an interpreter and copier's import six more times)."""
    root = tmp_path_factory.mktemp("generated")
    result = cplugins("new", "neck", NAMES["neck"], "--dir", str(root / "neck"))
    assert result.returncode == 0, result.stderr
    assert f"created {root / 'neck'}" in result.stdout
    for kind, name in NAMES.items():
        if kind != "neck":
            assert new_project(kind, name, root / kind) == root / kind
    return {kind: root / kind for kind in NAMES}


@pytest.fixture(scope="module")
def generated_site(generated, tmp_path_factory) -> Path:
    """All seven wheels built in one ``pip wheel`` call, installed into one target."""
    site = tmp_path_factory.mktemp("generated_site")
    built = install_wheels(generated.values(), tmp_path_factory.mktemp("generated_wheels"), site)
    assert len(built) == len(KINDS), built
    return site


def test_project_layout_and_light_hook_module(generated):
    for kind, project in generated.items():
        package = snake_case(NAMES[kind])
        files = {p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()}
        assert {"pyproject.toml", "README.md", f"{package}/__init__.py",
                f"{package}/plugin.py", f"{package}/{kind}.py",
                f"configs/faster-rcnn_{package}_shapes.py", "tests/test_contract.py",
                "tests/conftest.py",
                "tests/test_train.py", f"tests/test_{kind}.py"} <= files, (kind, files)
        assert not any(f.endswith(".jinja") for f in files)
        other_kinds = {f"{package}/{k}.py" for k in KINDS if k != kind}
        assert not other_kinds & files
        plugin = (project / package / "plugin.py").read_text()
        imports = [line for line in plugin.splitlines() if line.startswith(("import", "from"))]
        assert imports == ["from cplugins import ModuleSpec, hookimpl"], imports
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
    dist = {kind: snake_case(name).replace("_", "-") for kind, name in NAMES.items()}
    for kind in ("backbone", "neck", "head", "loss"):
        subject = f"{dist[kind]}::{NAMES[kind]} -> mmdet::model"
        assert by_id[f"{subject}::run"]["status"] == "pass"
        assert "benchmark case" in by_id[f"{subject}::build"]["message"]
        assert "same outputs" in by_id[f"{subject}::state_dict"]["message"]
    assert by_id["acme-hook::AcmeHook -> mmengine::hook::kind"]["status"] == "pass"
    assert by_id["acme-dataset::AcmeDataset -> mmdet::dataset::run"]["message"].startswith(
        "2 items")
    assert by_id["acme-transform::AcmeTransform -> mmdet::transform::run"]["status"] == "pass"
    for dist in distributions:
        assert "no heavy package" in by_id[f"{dist}::light"]["message"]


#: one training with every generated kind at once, on the generated dataset's own format
COMBINED_TEST = """
import math
from pathlib import Path

from acme_dataset.dataset import make_example_data

CONFIG = Path(__file__).with_name("combined.py")


def test_every_generated_kind_in_one_training(cplugins_train, tmp_path):
    data_root = make_example_data(tmp_path / "data", num_train=4, num_val=2,
                                  image_size=(96, 128))
    result = cplugins_train(CONFIG, data_root=data_root)
    assert result.iterations == 2
    assert result.losses and all(math.isfinite(loss) for loss in result.losses)
    model = result.model
    assert [type(model.backbone).__name__, type(model.neck).__name__,
            type(model.roi_head.bbox_head).__name__,
            type(model.roi_head.bbox_head.loss_bbox).__name__] == [
        "AcmeBackbone", "AcmeNeck", "AcmeHead", "AcmeLoss"]
    assert math.isfinite(result.scalars["loss_bbox"])
    assert type(result.train_dataset).__name__ == "AcmeDataset"
    assert "AcmeTransform" in [type(t).__name__ for t in result.train_dataset.pipeline.transforms]
    assert result.scalars["imgs_per_s"] > 0  # logged by AcmeHook
"""
COMBINED_CONFIG = """
_base_ = {base!r}
custom_imports = dict(imports={packages!r}, allow_failed_imports=False)
model = dict(
    backbone=dict(_delete_=True, type='AcmeBackbone', channels=[32, 64, 128, 256]),
    neck=dict(in_channels=[32, 64, 128, 256]),
    roi_head=dict(bbox_head=dict(
        _delete_=True, type='AcmeHead', in_channels=64, feat_channels=128, roi_feat_size=7,
        num_classes=3, reg_class_agnostic=False,
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4,
                        target_stds=[0.1, 0.1, 0.2, 0.2]),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        loss_bbox=dict(type='AcmeLoss', loss_weight=1.0))))
train_pipeline = [
    dict(type='LoadImageFromFile'), dict(type='AcmeTransform', sigma=8.0, prob=1.0),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(128, 96), keep_ratio=True), dict(type='PackDetInputs')]
train_dataloader = dict(dataset=dict(
    _delete_=True, type='AcmeDataset', data_root='', ann_file='annotations/train.jsonl',
    data_prefix=dict(img=''), pipeline=train_pipeline))
custom_hooks = [dict(type='AcmeHook', interval=1)]
"""


@pytest.mark.slow
def test_generated_tests_pass_and_the_kinds_train(generated, generated_site, tmp_path):
    """One pytest process, the wheels installed (not the source folders), cplugins.testing
    loaded by the projects' tests/conftest.py: every project's contract and unit tests; the
    neck's own 2-iteration training test (the `cplugins new neck` flow); and one 2-iteration
    training using all seven generated kinds together (instead of seven trainings)."""
    packages = [snake_case(name) for name in NAMES.values()]
    (tmp_path / "combined.py").write_text(COMBINED_CONFIG.format(
        base=str(generated["neck"] / "configs" / "faster-rcnn_acme_neck_shapes.py"),
        packages=packages))
    (tmp_path / "test_combined.py").write_text(COMBINED_TEST)
    files = [str(tmp_path / "test_combined.py"), str(generated["neck"] / "tests")]
    for kind, project in generated.items():
        if kind != "neck":
            files += [str(project / "tests" / "test_contract.py"),
                      str(project / "tests" / f"test_{kind}.py")]
    report = tmp_path / "junit.xml"
    result = run_python("", generated_site, cwd=tmp_path, args=[
        "-m", "pytest", "-q", "-p", "no:cacheprovider", "--import-mode=importlib",
        "-o", "junit_family=xunit1", f"--junitxml={report}", *files])
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    outcome: dict[str, list[str]] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        status = next((c.tag for c in case if c.tag in ("failure", "error", "skipped")),
                      "passed")
        outcome.setdefault(case.get("name").split("[")[0], []).append(status)
    assert outcome["test_every_generated_kind_in_one_training"] == ["passed"]
    assert outcome["test_config_trains_two_iterations"] == ["passed"]  # the neck's own
    contract = outcome["test_contract"]
    assert "failure" not in contract and "error" not in contract
    assert contract.count("passed") >= 8 * len(KINDS), contract
    unit = [s for name, statuses in outcome.items() for s in statuses
            if name not in ("test_contract", "test_config_trains_two_iterations",
                            "test_every_generated_kind_in_one_training")]
    assert len(unit) >= 2 * len(KINDS) and set(unit) == {"passed"}, outcome


@pytest.mark.parametrize("args, message", [
    (["new", "model", "Foo"], "unknown KIND 'model'; allowed: backbone, neck, head, loss, "
                              "dataset, hook, transform"),
    (["new", "neck", "my-neck"], "NAME 'my-neck' is not a Python identifier"),
    (["new", "neck", "class"], "NAME 'class' is not a Python identifier"),
    (["new", "neck", "Torch"], "package name 'torch', which is already importable"),
    (["new", "neck", "FPN"], "NAME 'FPN' is mmdet's own in mmdet::model "
                             "(mmdet/models/necks/fpn.py)"),
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


def test_pytest_plugin_is_not_registered_and_light():
    """Loaded only on request (tests/conftest.py's pytest_plugins, or -p cplugins.testing):
    tests/test_guest_isolation.py runs an unrelated project's session."""
    code = ("import sys\nfrom importlib.metadata import entry_points\n"
            "eps = {ep.value for ep in entry_points(group='pytest11')}\n"
            "assert 'cplugins.testing' not in eps, eps\n"
            "import cplugins.testing, cplugins.scaffold, cplugins.check.cli\n"
            "heavy = [m for m in ('torch', 'mmengine', 'mmdet', 'copier') if m in sys.modules]\n"
            "print('HEAVY', heavy)\n")
    result = run_python(code, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout
