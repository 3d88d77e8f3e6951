"""NaN guard: a diverging run stops with the reason, keeps its last good checkpoint and never
writes or points at a non-finite one (real tools/train.py; the other guard cases run on a
small model in test_training_hooks.py)."""
from __future__ import annotations

import re

import pytest
import torch
from training_setup import error_lines, output, train, write_tiny_config

from cplugins.training.loading import read_checkpoint

pytestmark = pytest.mark.slow


def _finite(path) -> bool:
    state = read_checkpoint(str(path))["state_dict"]  # weights-only, cplugins' allowlist
    return all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point())


def test_diverging_run_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    # SGD at lr 1e6 without clipping: weights explode after the first step, the loss is not
    # finite from iteration 2 on (what the issue saw with a diverging learning rate)
    config = write_tiny_config(tmp_path, max_iters=6, interval=1, extra="""
        optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                             optimizer=dict(type='SGD', lr=1e6, momentum=0.9))
        default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=1),
                             logger=dict(interval=1))
    """)
    work_dir = tmp_path / "work"
    result = train(config, work_dir)

    assert result.returncode != 0, output(result)[-3000:]
    errors = error_lines(result)
    assert len(errors) == 1, output(result)[-3000:]
    assert "Traceback" not in result.stderr
    # the iteration, and what was not finite: loss terms and/or the gradient norm
    assert re.match(r"error: training stopped at iteration \d+: non-finite "
                    r"(loss\w*=(nan|inf|-inf)|gradient norm=(nan|inf))", errors[0]), errors[0]
    checkpoints = sorted(work_dir.glob("iter_*.pth"))
    assert checkpoints, "the good first iteration's checkpoint was deleted"
    assert all(_finite(path) for path in checkpoints)
    last = (work_dir / "last_checkpoint").read_text().strip()
    assert last in map(str, checkpoints)
    assert f"Last good checkpoint: {last}" in errors[0]
    assert not list(work_dir.glob(".*.tmp"))
