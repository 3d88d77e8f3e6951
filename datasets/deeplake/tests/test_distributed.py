"""2-process ``torchrun tools/train.py --launcher pytorch`` training (gloo, CPU) from a Deep Lake
dataset: each rank reads its own rows (mmengine's DefaultSampler shards them)."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
#: a hook recording the image ids each rank trained on (imported by the config)
RECORDER = textwrap.dedent("""
    import json, os
    from mmengine.hooks import Hook
    from mmengine.registry import HOOKS

    @HOOKS.register_module()
    class RecordImageIds(Hook):
        def __init__(self):
            self.seen = []

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            self.seen += [int(s.img_id) for s in data_batch["data_samples"]]

        def after_train(self, runner):
            with open(os.path.join(runner.work_dir, f"rank{runner.rank}.json"), "w") as f:
                json.dump(self.seen, f)
""")


def _tiny_retinanet() -> dict:
    """test_train.py's model (test modules are not importable by name: importlib mode)."""
    spec = importlib.util.spec_from_file_location("deeplake_test_train",
                                                  Path(__file__).with_name("test_train.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._tiny_retinanet()


@pytest.mark.slow
def test_torchrun_two_processes_read_different_rows(shapes_deeplake, tmp_path):
    from mmengine.config import Config

    (tmp_path / "record_ids.py").write_text(RECORDER)
    pipeline = [dict(type="LoadImageFromDeepLake"), dict(type="LoadAnnotations", with_bbox=True),
                dict(type="Resize", scale=(96, 64), keep_ratio=True),
                dict(type="PackDetInputs")]
    Config(dict(
        default_scope="mmdet", custom_imports=dict(imports=["cplugins_deeplake", "record_ids"]),
        model=_tiny_retinanet(),
        train_dataloader=dict(
            batch_size=1, num_workers=0, sampler=dict(type="DefaultSampler", shuffle=False),
            dataset=dict(type="DeepLakeDetDataset", path=str(shapes_deeplake / "train"),
                         pipeline=pipeline)),
        train_cfg=dict(type="IterBasedTrainLoop", max_iters=2),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.005, momentum=0.9)),
        custom_hooks=[dict(type="RecordImageIds")],
        default_hooks=dict(checkpoint=dict(type="CheckpointHook", interval=2, by_epoch=False)),
        randomness=dict(seed=0))).dump(str(tmp_path / "two.py"))
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(REPO / "tools" / "train.py"), str(tmp_path / "two.py"), "--launcher", "pytorch",
         "--work-dir", str(tmp_path / "work"), "--no-progress"],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    # a rank's own error comes before the other rank's traceback: show the error lines too
    errors = [line for line in result.stderr.splitlines() if "Error" in line or "error:" in line]
    assert result.returncode == 0, "\n".join(errors[:20]) + "\n...\n" + result.stderr[-3000:]
    work = tmp_path / "work"
    log = next(work.glob("*/*.log")).read_text()
    assert "Distributed training: True" in log and "(train) [1][2/2]" in log
    assert (work / "iter_2.pth").is_file()
    ids = [json.loads((work / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(len(i) == 2 for i in ids), ids
    assert not set(ids[0]) & set(ids[1]), ids  # no row read by both ranks
    assert len(set(ids[0]) | set(ids[1])) == 4  # the 4 rows, each read once
