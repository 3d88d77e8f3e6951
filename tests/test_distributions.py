"""Every plugin distribution installs from a folder of wheels (``pip install --find-links dist
cplugins-<name>``), with cplugins itself resolved as its dependency, and lists and registers."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from helpers import PLUGIN_DIRS, REPO, run_python

from conftest import FIXTURE_DISTS, install_target, pip

EXPECTED = {  # distribution -> {module: registries} (at least these)
    "cplugins-augfpn": {"AugFPN": {"mmdet::model"}},
    "cplugins-inception": {"InceptionV4": {"mmpretrain::model", "mmdet::model"},
                           "BNInception": {"mmpretrain::model", "mmdet::model"}},
    "cplugins-embednorm": {"EmbedNormClsHead": {"mmpretrain::model"},
                           "EmbedNormClassifier": {"mmpretrain::model"}},
    "cplugins-f1loss": {"SoftF1Loss": {"mmpretrain::model", "mmdet::model"}},
    "cplugins-deeplake": {"DeepLakeDetDataset": {"mmdet::dataset"},
                          "DeepLakeClsDataset": {"mmpretrain::dataset"},
                          "DeepLakeSegDataset": {"mmseg::dataset"},
                          "LoadImageFromDeepLake": {"mmdet::transform", "mmpretrain::transform",
                                                    "mmseg::transform"},
                          "LoadAnnotationsFromDeepLake": {"mmseg::transform"}},
}
#: installed without their dependencies (deeplake: a 46 MB wheel with numpy, in the venv)
NO_DEPS = ("cplugins-deeplake",)


@pytest.fixture(scope="module")
def site_all(tmp_path_factory, wheel_dir):
    target = tmp_path_factory.mktemp("site_all")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-compile",
                    "--find-links", str(wheel_dir), "--target", str(target),
                    *(d for d in EXPECTED if d not in NO_DEPS)],
                   check=True, capture_output=True, text=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-compile", "--no-deps",
                    "--find-links", str(wheel_dir), "--target", str(target), *NO_DEPS],
                   check=True, capture_output=True, text=True)
    return target


def test_every_plugin_folder_is_covered():
    assert len(PLUGIN_DIRS) == len(EXPECTED)


def _modules(plugin: dict) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for module in plugin["modules"]:
        found.setdefault(module["name"], set()).add(module["registry"])
    return found


def test_find_links_install_lists_and_registers_every_plugin(site_all):
    assert (site_all / "cplugins").is_dir()  # the dependency came from the same folder
    result = run_python("", site_all, args=["-m", "cplugins.cli", "list", "--json",
                                            "--activate"])
    assert result.returncode == 0, result.stderr
    plugins = {p["distribution"]: p for p in json.loads(result.stdout)["plugins"]}
    for dist, modules in EXPECTED.items():
        plugin = plugins[dist]
        assert plugin["status"] == "active", plugin
        declared = _modules(plugin)
        assert {name: declared.get(name) for name in modules} == modules
        assert all(m["status"] == "registered" for m in plugin["modules"]), plugin

    code = ("import cplugins_inception, cplugins_f1loss\n"
            "print(cplugins_inception.__file__)\n"
            "from mmdet.registry import MODELS\n"
            "print(MODELS.get('SoftF1Loss').__module__, MODELS.get('InceptionV4').__module__)\n")
    result = run_python(code, site_all)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(str(site_all))
    assert "cplugins_f1loss.soft_f1 cplugins_inception.inception_v4" in result.stdout


# -- the plugin lock (issue 12): what a checkpoint needs, recorded and checked ---------------
DEMO = REPO / "configs" / "augfpn" / "faster-rcnn_r18_augfpn_400i_shapes.py"


def _version_variant(tmp_path: Path, version: str) -> Path:
    """cplugins-lockfix-fixture at another version, built and installed to its own target."""
    source = tmp_path / "lockfix"
    shutil.copytree(FIXTURE_DISTS / "lockfix", source)
    pyproject = source / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "0.0.1"',
                                                       f'version = "{version}"'))
    target = tmp_path / f"site_{version}"
    pip("install", "--no-deps", "--no-compile", "--no-build-isolation", "--target",
        str(target), str(source))
    return target


@pytest.mark.slow
def test_training_locks_its_plugins_and_the_checkpoint_names_what_to_install(
        site_authors, tmp_path):
    data_root = tmp_path / "shapes"
    config = tmp_path / "lockfpn.py"
    config.write_text(textwrap.dedent(f"""
        _base_ = {str(DEMO)!r}
        custom_imports = dict(imports=['lockfix_fixture'], allow_failed_imports=False)
        model = dict(neck=dict(type='LockFPN'))
        data_root = {str(data_root) + '/'!r}
        synthetic_data = dict(task='detection', data_root=data_root, num_train=4, num_val=2,
                              image_size=(64, 80), seed=1)
        train_cfg = dict(max_iters=2, val_interval=100)
        train_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root))
        val_dataloader = dict(dataset=dict(data_root=data_root))
        test_dataloader = val_dataloader
        val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
        test_evaluator = val_evaluator
        default_hooks = dict(checkpoint=dict(interval=2), logger=dict(interval=1))
    """))
    work_dir = tmp_path / "work"
    # a stock-name clash installed next to it must not refuse this config (it uses no FPN)
    env = {"CPLUGINS_LOAD_PLUGINS": "lockfix,stockclash"}
    result = run_python("", site_authors, env=env, args=[
        str(REPO / "tools" / "train.py"), str(config), "--work-dir", str(work_dir),
        "--no-progress"])
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]

    lock = json.loads((work_dir / "cplugins-lock.json").read_text())
    entry = next(e for e in lock if e["distribution"] == "cplugins-lockfix-fixture")
    assert (entry["version"], entry["package"], entry["modules"]) == (
        "0.0.1", "lockfix_fixture", ["LockFPN"])
    assert re.fullmatch(r"[0-9a-f]{64}", entry["record_sha256"])
    assert "cplugins-stockclash-fixture" not in {e["distribution"] for e in lock}  # not used
    import mmengine.runner.checkpoint  # noqa: F401

    import cplugins  # noqa: F401  (its allowlist for weights-only loading of mmengine's types)

    checkpoint = torch.load(work_dir / "iter_2.pth", map_location="cpu", weights_only=True)
    assert checkpoint["meta"]["cplugins_lock"] == lock

    # the saved config carries what a stock Runner needs (plugin import, cplugins' fixes)
    code = textwrap.dedent(f"""
        from mmengine.config import Config
        from mmengine.runner import Runner
        cfg = Config.fromfile({str(work_dir / config.name)!r})
        print("IMPORTS", cfg.custom_imports["imports"])
        cfg.work_dir = {str(tmp_path / 'rebuilt')!r}
        runner = Runner.from_cfg(cfg)
        print("NECK", type(runner.model.neck).__name__)
    """)
    result = run_python(code, site_authors, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "'lockfix_fixture'" in result.stdout and "'cplugins.templates.runtime'" in result.stdout
    assert "NECK LockFPN" in result.stdout
    result = run_python("", args=["-m", "cplugins.cli", "lock", str(work_dir / config.name)])
    assert "cplugins-lockfix-fixture==0.0.1  # LockFPN" in result.stdout.splitlines(), \
        result.stderr  # the saved config says what it needs even where the plugin is gone

    # the plugin is gone: tools/test.py says what to install, in one line
    result = run_python("", args=[str(REPO / "tools" / "test.py"), str(config),
                                  str(work_dir / "iter_2.pth"), "--work-dir", str(work_dir)])
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert (f"error: {work_dir / 'iter_2.pth'}: the checkpoint was trained with "
            "cplugins-lockfix-fixture 0.0.1 (its modules LockFPN), which is not installed: "
            "pip install 'cplugins-lockfix-fixture==0.0.1'") in result.stderr

    # ... and so does tools/train.py --resume, before the config's custom_imports fail
    result = run_python("", args=[str(REPO / "tools" / "train.py"), str(config), "--resume",
                                  str(work_dir / "iter_2.pth"), "--work-dir", str(work_dir)])
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "pip install 'cplugins-lockfix-fixture==0.0.1'" in result.stderr

    # cplugins lock: requirement lines; another installed version is named with the fix
    site_v2 = _version_variant(tmp_path, "0.0.2")
    result = run_python("", site_v2, args=["-m", "cplugins.cli", "lock",
                                           str(work_dir / "iter_2.pth")])
    assert result.returncode == 0, result.stderr
    assert "cplugins-lockfix-fixture==0.0.1  # LockFPN" in result.stdout.splitlines()
    assert ("cplugins-lockfix-fixture 0.0.1 (its modules LockFPN), which is installed at "
            "0.0.2: pip install 'cplugins-lockfix-fixture==0.0.1'") in result.stderr


# -- what a wheel needs, a wheel carries (issue 22): the AugFPN zoo and its template ----------
def _clean_stack(tmp_path: Path) -> Path:
    """The venv's site-packages without cplugins and the repository's plugins (their editable
    installs point into the repository): symlinks to every other entry, except backports named
    like a standard-library module (on PYTHONPATH they would shadow it; ``typing.py``)."""
    import sysconfig

    stack = tmp_path / "stack"
    stack.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        module = entry.name[:-3] if entry.name.endswith(".py") else entry.name
        if (not entry.name.lower().startswith(("cplugins", "__editable__", "_cplugins"))
                and module not in sys.stdlib_module_names):
            (stack / entry.name).symlink_to(entry)
    return stack


@pytest.mark.slow
def test_augfpn_wheel_lists_renders_and_trains_its_configs(tmp_path_factory, wheels, tmp_path):
    """cplugins + cplugins-augfpn wheels in a clean target, the repository off the path
    (``python -S``, PYTHONPATH = target + the stack, cwd a temp dir): ``cplugins configs``
    lists the zoo from the installed package, ``cplugins render MMDetection_AugFPN`` starts
    from the packaged base config, and mmdet's own train.py trains the rendered file."""
    import mmdet

    from cplugins.shapes import make_shapes_detection

    target = install_target(tmp_path_factory, "site_zoo",
                            [wheels["cplugins"], wheels["cplugins_augfpn"]])
    env = {"PYTHONPATH": f"{target}:{_clean_stack(tmp_path)}", "OMP_NUM_THREADS": "1"}
    cwd = tmp_path / "cwd"
    cwd.mkdir()

    def run(*args: str) -> subprocess.CompletedProcess:
        return run_python("", env=env, cwd=cwd, args=["-S", *args])

    result = run("-c", "import sys, cplugins, cplugins_augfpn; print(cplugins.__file__, "
                       "cplugins_augfpn.__file__, any('/work' in p for p in sys.path))")
    assert result.returncode == 0, result.stderr[-3000:]
    files = result.stdout.split()
    assert all(f.startswith(str(target)) for f in files[:2]), result.stdout
    assert str(REPO) not in result.stdout

    result = run("-m", "cplugins.cli", "configs", "cplugins-augfpn", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    (label, paths), = json.loads(result.stdout).items()
    assert label == "cplugins-augfpn 0.1.0" and len(paths) == 10
    assert all(p.startswith(str(target / "cplugins_augfpn" / "configs")) for p in paths)
    assert (target / "cplugins_augfpn" / "configs" / "metafile.yml").is_file()
    assert (target / "cplugins_augfpn" / "configs" / "README.md").is_file()

    data = make_shapes_detection(tmp_path / "shapes", num_train=2, num_val=1,
                                 image_size=(96, 128), seed=4)["data_root"]
    rendered = tmp_path / "augfpn.py"
    options = {"train_dataloader.num_workers": 0, "train_dataloader.persistent_workers": False,
               "val_dataloader.num_workers": 0, "val_dataloader.persistent_workers": False,
               "test_dataloader.num_workers": 0, "test_dataloader.persistent_workers": False,
               "model.backbone.depth": 18, "model.neck.in_channels": "[64,128,256,512]",
               "model.train_cfg.rcnn.sampler.num": 32, "model.test_cfg.rcnn.score_thr": 0.0,
               "default_hooks.checkpoint.interval": 1}
    result = run("-m", "cplugins.cli", "render", "MMDetection_AugFPN", "--data", data,
                 "--set", "image_size=[96]", "batch_size=2", "num_epochs=1",
                 "--cfg-options", *(f"{k}={v}" for k, v in options.items()),
                 "-o", str(rendered))
    assert result.returncode == 0, result.stderr[-3000:]
    text = rendered.read_text()  # standalone: the packaged base config merged in
    assert "type='CSTwoStageDetector'" in text and "type='AugFPN'" in text
    assert "type='SoftRoIExtractor'" in text
    # the built-in templates' base configs travel in the cplugins wheel too
    result = run("-m", "cplugins.cli", "render", "Detection_MSC10", "--data", data,
                 "-o", str(tmp_path / "msc10.py"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "type='RetinaNet'" in (tmp_path / "msc10.py").read_text()

    # mmdet's own train.py, unchanged; this environment's torch / torchvision need cplugins'
    # compatibility fixes (`cplugins doctor`): the process opts in before importing the stack
    train_py = Path(mmdet.__file__).parent / ".mim" / "tools" / "train.py"
    work_dir = tmp_path / "work"
    argv = [str(train_py), str(rendered), "--work-dir", str(work_dir)]
    result = run("-c", "import runpy, sys, cplugins.compat; cplugins.compat.apply(); "
                       f"sys.argv = {argv!r}; runpy.run_path(sys.argv[0], run_name='__main__')")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert (work_dir / "epoch_1.pth").is_file()
    assert "aux_loss_cls" in result.stdout + result.stderr  # Consistent Supervision trained
