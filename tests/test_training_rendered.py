"""A rendered template carries the training safeguards itself: a stock mmengine Runner on the
rendered file (no tools/train.py) gets the NaN guard, atomic checkpoints and random states."""
from __future__ import annotations

import textwrap

import pytest
import torch
from helpers import run_python

from cplugins.templates.rendering import render, write_config
from cplugins.training.loading import read_checkpoint

pytestmark = pytest.mark.slow

SMALL_RETINA = {"model.neck.out_channels": 32, "model.bbox_head.in_channels": 32,
                "model.bbox_head.feat_channels": 32, "model.bbox_head.stacked_convs": 1}


def test_rendered_template_has_the_safeguards_once():
    from cplugins.training.setup import add_training_safeguards

    cfg = render("detection/Clarifai_InceptionV2", {"image_size": [96]})
    hooks = [h["type"] for h in cfg.custom_hooks]
    assert {"NanGuardHook", "RandomStateHook"} <= set(hooks)
    assert cfg.default_hooks.checkpoint.type == "AtomicCheckpointHook"
    add_training_safeguards(cfg)  # what tools/train.py --template does next: nothing twice
    assert [h["type"] for h in cfg.custom_hooks] == hooks


def test_stock_runner_on_a_rendered_template_stops_on_nan(tmp_path):
    from cplugins.shapes import make_shapes_detection

    data = make_shapes_detection(tmp_path / "shapes", num_train=2, num_val=1,
                                 image_size=(96, 128), seed=3)["data_root"]
    options = {f"{k}_dataloader.{o}": v for k in ("train", "val", "test")
               for o, v in (("num_workers", 0), ("persistent_workers", False))}
    options.update({"optim_wrapper.optimizer.lr": 1e6, "optim_wrapper.clip_grad": None,
                    "default_hooks.checkpoint.interval": 1, "train_cfg.val_interval": 100,
                    **SMALL_RETINA})
    values = dict(image_size=[96], batch_size=1, num_epochs=4, use_focal_loss=False,
                  random_resize_lower=80, random_resize_upper=112)
    config = write_config(render("detection/Clarifai_InceptionV2", values, data=data,
                                 overrides=options), tmp_path / "retina.py")
    work_dir = tmp_path / "work"
    code = textwrap.dedent(f"""
        from mmengine.config import Config
        from mmengine.runner import Runner
        cfg = Config.fromfile({str(config)!r})
        cfg.work_dir = {str(work_dir)!r}
        try:
            Runner.from_cfg(cfg).train()
        except Exception as exc:
            print("STOPPED", type(exc).__name__, exc)
    """)
    result = run_python(code, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    stopped = next((line for line in result.stdout.splitlines() if line.startswith("STOPPED")),
                   None)
    assert stopped is not None, output[-3000:]
    assert stopped.startswith("STOPPED NonFiniteError training stopped at iteration "), stopped
    for path in work_dir.glob("epoch_*.pth"):  # only finite ones were written
        state = read_checkpoint(str(path))["state_dict"]
        assert all(bool(torch.isfinite(t).all()) for t in state.values()
                   if t.is_floating_point()), path
    last = (work_dir / "last_checkpoint").read_text().strip()  # epoch 1 was still finite
    assert (work_dir / last).exists() and f"Last good checkpoint: {last}" in stopped, stopped
    assert not list(work_dir.glob(".*.tmp"))
