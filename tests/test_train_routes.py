"""2 train iterations + validation of the AugFPN demo config through the three entry routes:
the project's tools/train.py, a stock mmengine Runner.from_cfg, and mmdet's own train.py.
"""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from helpers import REPO, run_python

DEMO = REPO / "configs" / "augfpn" / "faster-rcnn_r18_augfpn_400i_shapes.py"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory) -> Path:
    """The demo config shrunk to 2 iterations on 8 training and 4 validation images."""
    root = tmp_path_factory.mktemp("route")
    data_root = root / "shapes"
    config = root / "tiny_augfpn.py"
    config.write_text(textwrap.dedent(f"""
        _base_ = {str(DEMO)!r}
        data_root = {str(data_root) + '/'!r}
        synthetic_data = dict(task='detection', data_root=data_root, num_train=8, num_val=4,
                              image_size=(128, 160), seed=1)
        train_cfg = dict(max_iters=2, val_interval=2)
        train_dataloader = dict(dataset=dict(data_root=data_root))
        val_dataloader = dict(dataset=dict(data_root=data_root))
        test_dataloader = val_dataloader
        val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
        test_evaluator = val_evaluator
        default_hooks = dict(checkpoint=dict(interval=2), logger=dict(interval=1))
    """))
    return config


def _assert_trained(work_dir: Path, output: str) -> None:
    assert (work_dir / "iter_2.pth").is_file(), output[-3000:]
    scalars = next(work_dir.glob("*/vis_data/scalars.json"))
    records = [json.loads(line) for line in scalars.read_text().splitlines()]
    assert any("loss" in r for r in records)
    assert any("coco/bbox_mAP" in r for r in records)


def test_tools_train_generates_data_trains_and_evaluates(tiny_config, tmp_path):
    work_dir = tmp_path / "work"
    result = run_python("", args=[str(REPO / "tools" / "train.py"), str(tiny_config),
                                  "--work-dir", str(work_dir)])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    _assert_trained(work_dir, output)
    assert "train [" in output and "2/2" in output  # the progress display

    # tools/test.py evaluates the checkpoint it wrote
    metrics_file = tmp_path / "metrics.json"
    result = run_python("", args=[str(REPO / "tools" / "test.py"), str(tiny_config),
                                  str(work_dir / "iter_2.pth"), "--work-dir", str(work_dir),
                                  "--out", str(metrics_file)])
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    metrics = json.loads(metrics_file.read_text())
    assert 0.0 <= metrics["coco/bbox_mAP"] <= 1.0


def _generate_data(config: Path) -> None:
    code = textwrap.dedent(f"""
        from mmengine.config import Config
        from cplugins.shapes import make_shapes_detection
        spec = dict(Config.fromfile({str(config)!r}).synthetic_data)
        spec.pop('task')
        make_shapes_detection(spec.pop('data_root'), **spec)
    """)
    result = run_python(code)
    assert result.returncode == 0, result.stderr


def test_stock_runner_from_cfg(tiny_config, tmp_path):
    _generate_data(tiny_config)
    work_dir = tmp_path / "work"
    code = textwrap.dedent(f"""
        from mmengine.config import Config
        from mmengine.runner import Runner
        cfg = Config.fromfile({str(tiny_config)!r})   # custom_imports registers AugFPN
        cfg.work_dir = {str(work_dir)!r}
        runner = Runner.from_cfg(cfg)
        runner.train()
        print("NECK", type(runner.model.neck).__name__)
    """)
    result = run_python(code)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "NECK AugFPN" in output
    _assert_trained(work_dir, output)


def test_mmdet_shipped_train_script(tiny_config, tmp_path):
    import mmdet

    _generate_data(tiny_config)
    script = Path(mmdet.__file__).parent / ".mim" / "tools" / "train.py"
    assert script.is_file()
    work_dir = tmp_path / "work"
    result = run_python("", args=[str(script), str(tiny_config), "--work-dir", str(work_dir)])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    _assert_trained(work_dir, output)


def test_load_all_plugins_with_one_import(tiny_config, tmp_path):
    """custom_imports=['cplugins.all'] registers every installed plugin."""
    config = tmp_path / "all.py"
    config.write_text(f"_base_ = {str(tiny_config)!r}\n"
                      "custom_imports = dict(imports=['cplugins.all'])\n")
    code = textwrap.dedent(f"""
        from mmengine.config import Config
        from mmengine.registry import init_default_scope
        cfg = Config.fromfile({str(config)!r})
        init_default_scope('mmdet')
        from mmdet.registry import MODELS
        model = MODELS.build(cfg.model)
        print("NECK", type(model.neck).__name__)
    """)
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "NECK AugFPN" in result.stdout


def test_two_processes_through_mmengine_pytorch_launcher(tiny_config, tmp_path):
    """torchrun + --launcher pytorch: mmengine's own launcher, gloo on CPU, DDP-wrapped."""
    _generate_data(tiny_config)
    work_dir = tmp_path / "work"
    result = run_python("", args=[
        "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
        str(REPO / "tools" / "train.py"), str(tiny_config), "--launcher", "pytorch",
        "--work-dir", str(work_dir), "--cfg-options", "randomness.seed=3"])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    log = next(work_dir.glob("*/*.log")).read_text()
    # mmengine's runtime report: its launcher, distributed, and the world size ("GPU number")
    assert "Distributed launcher: pytorch" in log
    assert "Distributed training: True" in log
    assert "GPU number: 2" in log
    _assert_trained(work_dir, output)
