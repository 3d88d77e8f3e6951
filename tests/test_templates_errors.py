"""What a user sees when a barebones config or a command-line option is wrong (one line, exit
status 2 or 1, no traceback, nothing written). The commands run as subprocesses, as a user runs
them. (The plugins a barebones config inheriting a template keeps: test_templates_train.py's
stock-Runner test.)"""
from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest
from helpers import REPO, run_python

#: mmengine's import warns about setuptools' pkg_resources (the pinned stack, not the error)
QUIET = {"PYTHONWARNINGS": "ignore::UserWarning"}


def _render(tmp_path: Path, config_text: str) -> tuple[int, str, bool]:
    """``cplugins render MMDetection --set config=my_config.py -o out.py``."""
    config = tmp_path / "my_config.py"
    config.write_text(textwrap.dedent(config_text))
    out = tmp_path / "out.py"
    result = run_python("", cwd=tmp_path, env=QUIET, args=[
        "-m", "cplugins.cli", "render", "MMDetection", "--set", f"config={config}",
        "-o", str(out)])
    return result.returncode, result.stdout + result.stderr, out.exists()


BAD_BARE = [
    ("_base_ = '/mmdetection/configs/retinanet/retinanet_r50_fpn_1x_coco.py'\n",
     "_base_ '/mmdetection/configs/retinanet/retinanet_r50_fpn_1x_coco.py': no such file "
     "(looked at /mmdetection/configs/retinanet/retinanet_r50_fpn_1x_coco.py) (the installed "
     "configs: 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'); allowed: a path relative to "
     "the config's folder"),
    ("_base_ = ['../missing/base.py']\n", "_base_ '../missing/base.py': no such file (looked at "),
    ("_base_ = 'mmdet::retinanet/no_such_config.py'\n",
     "_base_ 'mmdet::retinanet/no_such_config.py': base config "
     "'mmdet::retinanet/no_such_config.py' not found"),
    ("_base_ = 'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py'\nmodel = dict(neck=undefined)\n",
     "config='{config}' cannot be loaded: NameError: "),
    ("_base_ = 'template:MMDetection_YOLOX?batch_size=2&batch_size=4'\n",
     "is given twice (batch_size=2 and batch_size=4); give each hyperparameter once"),
]


@pytest.mark.parametrize("text, message", BAD_BARE,
                         ids=["checkout-path", "relative", "scope", "name-error", "twice"])
def test_barebones_config_errors_are_one_line(tmp_path, text, message):
    code, output, written = _render(tmp_path, text)
    message = message.replace("{config}", str(tmp_path / "my_config.py"))
    assert code == 2 and not written, output
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], output


def test_train_max_iters_on_an_epoch_based_template_is_one_clear_line(tmp_path):
    start = time.monotonic()
    result = run_python("", cwd=tmp_path, env=QUIET, args=[
        str(REPO / "tools" / "train.py"), "--template", "Clarifai_ResNext",
        "--cfg-options", "train_cfg.max_iters=2"])
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in output, output[-3000:]
    assert ("error: --cfg-options train_cfg.max_iters=2: this config trains by epochs "
            "(EpochBasedTrainLoop, max_epochs=90), which takes no max_iters; give "
            "train_cfg.max_epochs=N instead") in result.stderr
    assert time.monotonic() - start < 60
    assert not (tmp_path / "work_dirs").exists() and not (tmp_path / "data").exists()


def test_train_help_suggests_an_option_templates_accept(capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_tool", REPO / "tools" / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(SystemExit):
        module.parse_args(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "e.g. train_cfg.max_epochs=1" in help_text
