"""Multi-process equivalence (tools/train.py, torchrun, gloo on CPU): what ``--sync-bn``, the
global loss normalisation and per-rank random streams fix, each checked against the run it
must equal and the run it must differ from.

One torchrun launch (2 processes) and one single-process launch run this file as a script
(``worker``): every training goes through ``tools/train.py``'s ``main`` with its real flags,
several in one process, and leaves its checkpoints in the output folder; the tests compare them.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import random
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
pytestmark = pytest.mark.slow

# --- the worker (runs under torchrun and alone) ---------------------------------------------


class DistFixedSamples(torch.utils.data.Dataset):
    """``length`` fixed samples of ``shape``; target: the sum of the input."""

    def __init__(self, shape=(4,), length=4):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(length, *shape, generator=g)
        self.y = self.x.flatten(1).sum(1, keepdim=True)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"inputs": self.x[i], "targets": self.y[i]}


def _models():
    from mmengine.model import BaseModel

    class DistBNRegression(BaseModel):
        """conv -> BatchNorm2d -> pool -> linear; inputs (N, 3, 8, 8)."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)
            self.fc = nn.Linear(4, 1)

        def forward(self, inputs, targets=None, mode="tensor"):
            out = self.fc(torch.relu(self.bn(self.conv(inputs))).mean((2, 3)))
            return {"loss_mse": ((out - targets) ** 2).mean()} if mode == "loss" else out

    class DistDropoutRegression(BaseModel):
        """linear -> dropout -> linear; logs a torch, numpy and Python draw per step."""

        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 1))

        def forward(self, inputs, targets=None, mode="tensor"):
            if mode == "loss":
                with open(os.environ["DIST_DRAWS"], "a") as f:
                    f.write(f"{torch.rand(()).item()!r} {np.random.rand()!r} "
                            f"{random.random()!r}\n")
            out = self.net(inputs)
            return {"loss_mse": ((out - targets) ** 2).mean()} if mode == "loss" else out

    return DistBNRegression, DistDropoutRegression


SMALL_CONFIG = """
default_scope = 'mmengine'
model = dict(type={model!r})
train_dataloader = dict(dataset=dict(type='DistFixedSamples', shape={shape!r}), batch_size=2,
                        num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
                        collate_fn=dict(type='default_collate'))
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1))
train_cfg = dict(by_epoch=False, max_iters={iters})
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval={interval}),
                     logger=dict(type='LoggerHook', interval=1))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
"""

RETINA_CONFIG = """
_base_ = ['mmdet::_base_/models/retinanet_r50_fpn.py',
          {repo!r} + '/configs/_base_/datasets/shapes_detection.py',
          {repo!r} + '/configs/_base_/schedules/schedule_400i.py',
          'mmdet::_base_/default_runtime.py']
data_root = {root!r} + '/'  # 2 images of 2 and 4 objects (see the test); no augmentation
synthetic_data = None
model = dict(
    backbone=dict(depth=18, base_channels=8, norm_eval=True, init_cfg=None,
                  norm_cfg=dict(type='BN', requires_grad=False)),  # BN-free in effect
    neck=dict(in_channels=[8, 16, 32, 64], out_channels=16),
    bbox_head=dict(num_classes=3, in_channels=16, feat_channels=16, stacked_convs=1))
pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
            dict(type='Resize', scale=(64, 64), keep_ratio=True), dict(type='PackDetInputs')]
train_dataloader = dict(
    batch_size=2, batch_sampler=None, sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(data_root=data_root, pipeline=pipeline,
                 filter_cfg=dict(filter_empty_gt=False)))
val_dataloader = val_cfg = val_evaluator = test_dataloader = test_cfg = test_evaluator = None
train_cfg = dict(max_iters=2, val_interval=1000)
param_scheduler = []
optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1),
                     logger=dict(type='LoggerHook', interval=1))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
"""


def _train(out: Path, name: str, config: str, *args: str) -> None:
    """tools/train.py CONFIG --work-dir out/name ARGS (in this process)."""
    from train import main

    world = int(os.environ.get("WORLD_SIZE", "1"))
    path = out / f"{name}.py"  # one file per run: mmengine names loggers after it
    temporary = out / f".{name}.{os.environ.get('RANK', '0')}"
    temporary.write_text(config)
    os.replace(temporary, path)  # every rank writes the same text; none reads half a file
    launcher = ["--launcher", "pytorch"] if world > 1 else []
    main([str(path), "--work-dir", str(out / name), "--no-progress", *launcher, *args])


def _check_bn_module(out: Path) -> None:
    """CrossRankBatchNorm on 2 ranks (3 samples each) vs BatchNorm2d on all 6: outputs, input
    and parameter gradients, running statistics."""
    import torch.distributed as dist

    from cplugins.training.cross_rank_bn import CrossRankBatchNorm

    rank = dist.get_rank()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 5, 4, 3, generator=g, dtype=torch.float64) * 3 + 1
    w = torch.randn(6, 5, 4, 3, generator=g, dtype=torch.float64)
    reference = nn.BatchNorm2d(5, momentum=0.3).double()
    with torch.no_grad():
        reference.weight.uniform_(0.5, 1.5, generator=g)
        reference.bias.uniform_(-1, 1, generator=g)
    mine = CrossRankBatchNorm(5, momentum=0.3).double()
    mine.load_state_dict(reference.state_dict())
    x_ref = x.clone().requires_grad_()
    y_ref = reference(x_ref)
    (y_ref * w).sum().backward()
    x_mine = x[3 * rank:3 * rank + 3].clone().requires_grad_()
    y_mine = mine(x_mine)
    (y_mine * w[3 * rank:3 * rank + 3]).sum().backward()
    gathered = [None, None]
    dist.all_gather_object(gathered, (y_mine.detach(), x_mine.grad))
    for p in (mine.weight, mine.bias):  # DDP would sum (then average) these
        dist.all_reduce(p.grad)
    if rank == 0:
        torch.save({
            "output": (torch.cat([y for y, _ in gathered]), y_ref.detach()),
            "input_grad": (torch.cat([gx for _, gx in gathered]), x_ref.grad),
            "weight_grad": (mine.weight.grad, reference.weight.grad),
            "bias_grad": (mine.bias.grad, reference.bias.grad),
            "running_mean": (mine.running_mean, reference.running_mean),
            "running_var": (mine.running_var, reference.running_var)}, out / "bn_module.pt")


def worker(out: Path) -> None:
    sys.path.insert(0, str(REPO / "tools"))
    from mmengine.registry import DATASETS, MODELS

    DATASETS.register_module(module=DistFixedSamples)
    for model in _models():
        MODELS.register_module(module=model)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    bn = SMALL_CONFIG.format(model="DistBNRegression", shape=(3, 8, 8), iters=3, interval=3)
    batch = f"train_dataloader.batch_size={2 // world}"
    retina = RETINA_CONFIG.format(repo=str(REPO), root=str(out / "shapes"))
    dropout = SMALL_CONFIG.format(model="DistDropoutRegression", shape=(4,), iters=4,
                                  interval=2)
    if world == 2:
        _train(out, "bn_sync", bn, "--no-data-check", "--sync-bn", "--cfg-options", batch)
        _check_bn_module(out)
        _train(out, "bn_plain", bn, "--no-data-check", "--cfg-options", batch)
        _train(out, "retina_norm", retina, "--cfg-options", batch)
        _train(out, "retina_plain", retina, "--no-global-loss-norm", "--cfg-options", batch)
        os.environ["DIST_DRAWS"] = str(out / f"draws_straight.{rank}")
        _train(out, "straight", dropout, "--no-data-check")
        os.environ["DIST_DRAWS"] = str(out / f"draws_resumed.{rank}")
        _train(out, "resumed", dropout, "--no-data-check", "--resume",
               str(out / "straight" / "iter_2.pth"))
    else:
        _train(out, "bn_single", bn, "--no-data-check")
        _train(out, "retina_single", retina)
        os.environ["DIST_DRAWS"] = str(out / "draws_other_world.0")
        _train(out, "other_world", dropout, "--no-data-check", "--resume",
               str(out / "straight" / "iter_2.pth"))
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.suppress(SystemExit):
            _train(out, "sync_bn_alone", bn, "--no-data-check", "--sync-bn")
        (out / "sync_bn_alone.txt").write_text(stderr.getvalue())
        # torchrun with one process: distributed, but nothing to synchronise
        main_args = ["--no-data-check", "--launcher", "pytorch", "--sync-bn"]
        from train import main

        (out / "sync_bn_one.py").write_text(bn)
        main([str(out / "sync_bn_one.py"), "--work-dir", str(out / "sync_bn_one"),
              "--no-progress", *main_args])


# --- the tests -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """The output of one 2-process launch, then one single-process launch (torchrun too:
    its last run is distributed, the others run without a launcher)."""
    from helpers import run_python

    from cplugins.shapes import make_shapes_detection

    out = tmp_path_factory.mktemp("dist")
    make_shapes_detection(out / "shapes", num_train=2, num_val=1, image_size=(64, 64), seed=0)
    env = {"OMP_NUM_THREADS": "1"}
    two = run_python("", env=env, args=["-m", "torch.distributed.run", "--nproc_per_node", "2",
                                        "--master_port", str(_free_port()), __file__, str(out)])
    assert two.returncode == 0, (two.stdout + two.stderr)[-4000:]
    one = run_python("", env=env, args=["-m", "torch.distributed.run", "--nproc_per_node", "1",
                                        "--master_port", str(_free_port()), __file__, str(out)])
    assert one.returncode == 0, (one.stdout + one.stderr)[-4000:]
    return out


def _weights(path: Path) -> dict:
    from cplugins.training.loading import read_checkpoint

    state = read_checkpoint(str(path))["state_dict"]
    return {k: v for k, v in state.items() if v.is_floating_point()}


def _max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def test_cross_rank_batchnorm_equals_batchnorm_on_the_whole_batch(runs):
    for name, (got, expected) in torch.load(runs / "bn_module.pt").items():
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10, msg=name)


def test_sync_bn_makes_two_processes_at_batch_1_train_like_one_at_batch_2(runs):
    single = _weights(runs / "bn_single" / "iter_3.pth")
    synced = _weights(runs / "bn_sync" / "iter_3.pth")
    plain = _weights(runs / "bn_plain" / "iter_3.pth")
    assert "bn.running_var" in single
    assert _max_difference(synced, single) < 1e-5
    assert _max_difference(plain, single) > 1e-2  # per-process statistics: another training
    log = next((runs / "bn_sync").glob("*/*.log")).read_text()
    assert "1 BatchNorm layers now normalise over the batch of all 2 processes" in log


def test_global_loss_norm_makes_retinanet_on_two_processes_equal_one(runs):
    annotations = json.loads((runs / "shapes/annotations/instances_train.json").read_text())
    per_image = [sum(a["image_id"] == i["id"] for a in annotations["annotations"])
                 for i in annotations["images"]]
    assert sorted(per_image) == [2, 4]  # what makes the per-rank normalisation wrong
    single = _weights(runs / "retina_single" / "iter_2.pth")
    step = _max_difference(single, _weights(runs / "retina_single" / "iter_1.pth"))
    normalised = _weights(runs / "retina_norm" / "iter_2.pth")
    plain = _weights(runs / "retina_plain" / "iter_2.pth")
    assert _max_difference(normalised, single) < 1e-4 * step
    assert _max_difference(plain, single) > 0.05 * step
    log = next((runs / "retina_norm").glob("*/*.log")).read_text()
    assert "avg_factor averaged over ranks in bbox_head (RetinaHead)" in log


def _draws(path: Path) -> list[list[float]]:
    return [[float(v) for v in line.split()] for line in path.read_text().splitlines()]


def test_each_rank_draws_its_own_numbers_and_resumes_its_own_stream(runs):
    straight = [_draws(runs / f"draws_straight.{r}") for r in (0, 1)]
    resumed = [_draws(runs / f"draws_resumed.{r}") for r in (0, 1)]
    assert len(straight[0]) == 4 and len(resumed[0]) == 2
    for step in range(4):  # torch, numpy and Python: every stream differs between ranks
        assert all(a != b for a, b in zip(straight[0][step], straight[1][step]))
    for r in (0, 1):  # after the resume at iteration 2, each rank repeats its own draws
        assert resumed[r] == straight[r][2:]
    assert _max_difference(_weights(runs / "resumed" / "iter_4.pth"),
                           _weights(runs / "straight" / "iter_4.pth")) == 0


def test_resume_with_another_number_of_processes_warns(runs):
    log = next((runs / "other_world").glob("*/*.log")).read_text()
    assert ("the checkpoint was saved by 2 process(es), this run has 1: random states not "
            "restored") in log
    assert (runs / "other_world" / "iter_4.pth").exists()


def test_global_loss_norm_only_touches_heads_checked_safe():
    """Normalised: heads that compute every loss whatever the images hold; left alone: heads
    that already reduce over ranks, and heads whose loss code was not checked."""
    from mmdet.models import dense_heads

    from cplugins.training.loss_norm import classify_head

    expected = {"RetinaHead": "normalise", "RPNHead": "normalise", "SSDHead": "normalise",
                "AnchorHead": "normalise", "FCOSHead": "already global",
                "ATSSHead": "already global", "YOLOXHead": "already global",
                "FreeAnchorRetinaHead": "unverified", "GuidedAnchorHead": "unverified"}
    for name, kind in expected.items():
        head_class = getattr(dense_heads, name)
        assert classify_head(head_class.__new__(head_class)) == kind, name


def test_sync_bn_with_one_process_warns_and_trains_plain_batchnorm(runs):
    log = next((runs / "sync_bn_one").glob("*/*.log")).read_text()
    assert "--sync-bn): a single process, nothing to synchronise" in log
    assert "Distributed training: True" in log
    torch.testing.assert_close(_weights(runs / "sync_bn_one" / "iter_3.pth"),
                               _weights(runs / "bn_single" / "iter_3.pth"))


def test_sync_bn_without_a_launcher_is_refused(runs):
    message = (runs / "sync_bn_alone.txt").read_text()
    assert "error: --sync-bn synchronises BatchNorm across processes: give --launcher " \
           "pytorch, slurm or mpi" in message
    assert not (runs / "sync_bn_alone").exists()


if __name__ == "__main__":
    worker(Path(sys.argv[1]))
