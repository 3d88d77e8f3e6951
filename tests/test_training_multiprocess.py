"""Two processes at batch 1 train exactly like one process at batch 2 when the model has no
BatchNorm, draws no random numbers and averages its loss per sample: mmengine's sampler
sharding and DDP's gradient averaging are equivalent to the larger batch (gloo on CPU).

What remains different for detectors, and why, is in docs/user-guide/safeguards.md.
"""
from __future__ import annotations

import textwrap

import pytest
import torch
from helpers import run_python

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent("""
    import os, sys
    import torch
    from torch import nn
    from torch.utils.data import Dataset
    import cplugins  # noqa: F401  (arms the CPU launcher fix)
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    class Regression(BaseModel):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(4, 1)

        def forward(self, inputs, targets=None, mode="tensor"):
            out = self.linear(inputs)
            return {"loss_mse": ((out - targets) ** 2).mean()} if mode == "loss" else out

    class Points(Dataset):
        def __init__(self):
            g = torch.Generator().manual_seed(0)
            self.x = torch.randn(16, 4, generator=g)
            self.y = self.x.sum(1, keepdim=True)

        def __len__(self):
            return 16

        def __getitem__(self, i):
            return {"inputs": self.x[i], "targets": self.y[i]}

    world = int(os.environ.get("WORLD_SIZE", "1"))
    torch.manual_seed(0)
    runner = Runner(
        model=Regression(), work_dir=sys.argv[1], default_scope="mmengine",
        train_dataloader=dict(dataset=Points(), batch_size=2 // world, num_workers=0,
                              sampler=dict(type="DefaultSampler", shuffle=False),
                              collate_fn=dict(type="default_collate")),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.05)),
        train_cfg=dict(by_epoch=False, max_iters=6), randomness=dict(seed=0),
        launcher="pytorch" if world > 1 else "none",
        env_cfg=dict(dist_cfg=dict(backend="gloo")),
        cfg=dict(model_wrapper_cfg=dict(type="MMDistributedDataParallel", device_ids=None,
                                        broadcast_buffers=False)),
        default_hooks=dict(checkpoint=dict(type="CheckpointHook", interval=100)))
    runner.train()
    model = runner.model.module if hasattr(runner.model, "module") else runner.model
    if os.environ.get("RANK", "0") == "0":
        torch.save(model.linear.state_dict(), os.path.join(sys.argv[1], "final.pt"))
""")


def test_two_processes_at_batch_1_equal_one_at_batch_2(tmp_path):
    script = tmp_path / "train_regression.py"
    script.write_text(SCRIPT)
    one = run_python("", args=[str(script), str(tmp_path / "one")])
    assert one.returncode == 0, one.stderr[-3000:]
    two = run_python("", args=["-m", "torch.distributed.run", "--nproc_per_node", "2",
                               "--master_port", "29533", str(script), str(tmp_path / "two")])
    assert two.returncode == 0, two.stderr[-3000:]
    assert "Distributed training: True" in next((tmp_path / "two").glob("*/*.log")).read_text()
    single = torch.load(tmp_path / "one" / "final.pt")
    double = torch.load(tmp_path / "two" / "final.pt")
    torch.manual_seed(0)
    start = torch.nn.Linear(4, 1).state_dict()
    for key in single:
        moved = (single[key] - start[key]).abs().max()
        assert moved > 1e-3  # it trained
        torch.testing.assert_close(double[key], single[key], rtol=1e-6, atol=1e-6 * moved)
