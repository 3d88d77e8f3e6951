"""The safeguard hooks and the CPU mixed-precision wrapper in a real mmengine Runner, on a
one-layer model (fast): skip vs stop on a NaN batch, bf16 autocast on CPU."""
from __future__ import annotations

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

import cplugins.all  # noqa: F401  (registers the hooks and the wrapper)
from cplugins.training.errors import NonFiniteError


class Regression(BaseModel):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1)
        self.seen_dtypes: list[torch.dtype] = []

    def forward(self, inputs, targets=None, mode="tensor"):
        out = self.linear(inputs)
        self.seen_dtypes.append(out.dtype)
        if mode == "loss":
            return {"loss_mse": ((out.float() - targets) ** 2).mean()}
        return out


class Points(Dataset):
    """16 samples; sample ``poisoned`` has a NaN input (a corrupt record)."""

    def __init__(self, poisoned: int | None = None):
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(16, 4, generator=generator)
        self.y = self.x.sum(1, keepdim=True)
        if poisoned is not None:
            self.x[poisoned, 0] = float("nan")

    def __len__(self):
        return 16

    def __getitem__(self, i):
        return {"inputs": self.x[i], "targets": self.y[i]}


def _runner(tmp_path, poisoned=None, hook=None, wrapper="OptimWrapper", iters=8,
            checkpoint=None, evaluator=None):
    model = Regression()
    loader = dict(dataset=Points(poisoned), batch_size=2, num_workers=0,
                  sampler=dict(type="DefaultSampler", shuffle=False),
                  collate_fn=dict(type="default_collate"))
    validation = {} if evaluator is None else dict(
        val_dataloader=loader, val_cfg=dict(), val_evaluator=[evaluator])
    runner = Runner(
        model=model, work_dir=str(tmp_path), train_dataloader=loader, **validation,
        optim_wrapper=dict(type=wrapper, optimizer=dict(type="SGD", lr=0.05)),
        train_cfg=dict(by_epoch=False, max_iters=iters, val_interval=iters),
        custom_hooks=[hook or dict(type="NanGuardHook")] if hook != {} else [],
        default_hooks=dict(checkpoint=checkpoint or dict(type="AtomicCheckpointHook",
                                                         interval=100)),
        default_scope="mmengine", experiment_name=f"{tmp_path.name}")
    return runner, model


EVERY_ITERATION_KEEP_ONE = dict(type="AtomicCheckpointHook", by_epoch=False, interval=1,
                                max_keep_ckpts=1)


def test_stop_names_the_iteration_and_term(tmp_path):
    runner, model = _runner(tmp_path, poisoned=6,   # batch 4 (iteration 4) holds sample 6
                            checkpoint=EVERY_ITERATION_KEEP_ONE)
    with pytest.raises(NonFiniteError, match=r"iteration 4: non-finite loss=nan, "
                                             r"loss_mse=nan, gradient norm=nan.* Last good "
                                             r"checkpoint: .*iter_3.pth"):
        runner.train()
    assert torch.isfinite(model.linear.weight).all()  # the NaN step was not applied
    assert [p.name for p in tmp_path.glob("*.pth")] == ["iter_3.pth"]
    assert (tmp_path / "last_checkpoint").read_text() == str(tmp_path / "iter_3.pth")


def test_checkpoint_hook_refuses_non_finite_weights_without_the_guard(tmp_path):
    runner, model = _runner(tmp_path, poisoned=6, hook={}, checkpoint=EVERY_ITERATION_KEEP_ONE)
    with pytest.raises(NonFiniteError, match=r"not saving .*iter_4.pth: 2 model tensors hold "
                                             r"NaN or inf \(first: linear.weight, linear.bias\); "
                                             r"last good checkpoint: .*iter_3.pth"):
        runner.train()
    assert [p.name for p in tmp_path.glob("*.pth")] == ["iter_3.pth"]
    assert (tmp_path / "last_checkpoint").read_text() == str(tmp_path / "iter_3.pth")


def test_skip_goes_on_with_finite_weights(tmp_path):
    runner, model = _runner(tmp_path, poisoned=6,
                            hook=dict(type="NanGuardHook", action="skip"))
    before = model.linear.weight.detach().clone()
    runner.train()
    assert runner.iter == 8
    assert torch.isfinite(model.linear.weight).all()
    assert not torch.equal(before, model.linear.weight)  # the other 7 steps were applied


def test_skip_stops_after_too_many_in_a_row(tmp_path):
    dataset_all_bad = dict(type="NanGuardHook", action="skip", max_consecutive_skips=2)
    runner, _ = _runner(tmp_path, poisoned=None, hook=dataset_all_bad)
    runner.train_dataloader.dataset.x[:] = float("nan")
    with pytest.raises(NonFiniteError, match="iteration 2: .* \\(2 steps in a row\\)"):
        runner.train()


def test_empty_validation_is_an_error(tmp_path):
    """An evaluator with no results (mmdet's CocoMetric when no box is predicted: it logs
    "The testing results of the whole dataset is empty." and returns {}) stops training."""
    from mmengine.evaluator import BaseMetric

    from cplugins.training.errors import EmptyValidationError

    class NoResults(BaseMetric):
        def process(self, data_batch, data_samples):
            pass

        def compute_metrics(self, results):
            return {}

    runner, _ = _runner(tmp_path, iters=2, evaluator=NoResults())
    with pytest.raises(EmptyValidationError, match="validation at iteration 2 produced no "
                                                   "metrics"):
        runner.train()


def test_cpu_amp_runs_in_bfloat16_and_learns(tmp_path):
    runner, model = _runner(tmp_path, wrapper="CpuAmpOptimWrapper", iters=8)
    before = model.linear.weight.detach().clone()
    runner.train()
    assert torch.bfloat16 in model.seen_dtypes
    assert model.linear.weight.dtype == torch.float32
    assert not torch.equal(before, model.linear.weight)


class NoisyDropout(Regression):
    """Draws from torch's global generator in every training step (like proposal sampling)."""

    def forward(self, inputs, targets=None, mode="tensor"):
        return super().forward(nn.functional.dropout(inputs, 0.5, self.training), targets, mode)


class NoisyPoints(Points):
    """Draws from numpy's global generator per sample (like RandomFlip)."""

    def __getitem__(self, i):
        import numpy as np

        item = super().__getitem__(i)
        return dict(item, inputs=item["inputs"] + float(np.random.rand()))


def _resumable(work_dir, iters, resume=None, val=False):
    loader = dict(dataset=NoisyPoints(), batch_size=2, num_workers=0,
                  sampler=dict(type="DefaultSampler", shuffle=True),
                  collate_fn=dict(type="default_collate"))
    extra = {}
    if val:  # validation between checkpoints must not shift the training stream
        from mmengine.evaluator import BaseMetric

        class Count(BaseMetric):
            def process(self, data_batch, data_samples):
                self.results.append(len(data_samples))

            def compute_metrics(self, results):
                return {"n": sum(results)}

        extra = dict(val_dataloader=loader, val_cfg=dict(), val_evaluator=[Count()])
    torch.manual_seed(0)  # the model is built before the runner seeds
    runner = Runner(
        model=NoisyDropout(), work_dir=str(work_dir), train_dataloader=loader,
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.05, momentum=0.9)),
        train_cfg=dict(by_epoch=False, max_iters=iters, val_interval=3),
        custom_hooks=[dict(type="RandomStateHook")],
        default_hooks=dict(checkpoint=dict(type="AtomicCheckpointHook", by_epoch=False,
                                           interval=4)),
        randomness=dict(seed=0), resume=resume is not None, load_from=resume,
        default_scope="mmengine", experiment_name=f"{work_dir.name}{iters}{resume}", **extra)
    runner.train()
    return runner.model.linear.weight.detach().clone()


@pytest.mark.parametrize("val", [False, True])
def test_resumed_run_equals_the_uninterrupted_one(tmp_path, val):
    straight = _resumable(tmp_path / "straight", 10, val=val)
    _resumable(tmp_path / "first", 6, val=val)   # checkpoints at 4 (and 6: the last)
    resumed = _resumable(tmp_path / "second", 10, resume=str(tmp_path / "first" / "iter_4.pth"),
                         val=val)
    assert torch.equal(straight, resumed), (straight - resumed).abs().max()


def test_mmcv_ops_run_under_cpu_autocast():
    """mmcv's CPU kernels (RoIAlign, nms) take float32 only; under the CPU AMP wrapper they get
    float32 inputs and hand back the caller's dtype, and gradients flow through."""
    from mmcv.ops import RoIAlign, nms

    from cplugins.training.amp import run_mmcv_ops_in_float32

    run_mmcv_ops_in_float32()
    conv = nn.Conv2d(3, 8, 3, padding=1)
    image = torch.randn(1, 3, 32, 32)
    rois = torch.tensor([[0, 2.0, 2.0, 20.0, 20.0], [0, 4.0, 8.0, 30.0, 16.0]])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        features = conv(image)
        pooled = RoIAlign(7, spatial_scale=1.0, sampling_ratio=2)(features, rois)
        boxes = rois[:, 1:].to(torch.bfloat16)
        dets, keep = nms(boxes, torch.tensor([0.9, 0.8], dtype=torch.bfloat16), 0.5)
    assert features.dtype == pooled.dtype == torch.bfloat16
    assert keep.tolist() == [0, 1]
    pooled.float().sum().backward()
    assert conv.weight.grad is not None and torch.isfinite(conv.weight.grad).all()
    # without autocast: float32 as before
    assert RoIAlign(7, 1.0, 2)(conv(image), rois).dtype == torch.float32
