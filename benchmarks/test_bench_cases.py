"""pytest-benchmark suite: every declared benchmark case, at small sizes, through the harness.

CI runs it to exercise the harness end to end (case collection, input generation, module and
baseline construction, the timed steps): no timing assertions. The figures worth reading come
from ``cplugins bench`` at the cases' own sizes (``benchmarks/RESULTS.md``)::

    pytest benchmarks --benchmark-only               # times the module steps, small sizes
    pytest benchmarks --benchmark-disable            # one call each (what CI needs)
"""
from __future__ import annotations

import dataclasses

import pytest
import torch
from helpers import REPO

import cplugins  # noqa: F401  (before torchvision / mmdet: arms the compat fixes)
from cplugins.bench.collect import collect_cases
from cplugins.bench.loading import run_loading_case
from cplugins.bench.measure import Timer, mmcv_ops_available
from cplugins.bench.runner import Settings, prepare_case
from cplugins.bench.workload import flatten_tensors
from cplugins.progress import Progress

CASES_FILE = REPO / "benchmarks" / "cases.py"
CASES, _OWNERS, ERRORS = collect_cases([str(CASES_FILE)])
#: small sizes: image-like inputs 80x96 (Inception-v4's valid convolutions need >= 75)
SMALL_IMAGE = (80, 96)
SMALL_BATCH = {"cls_features": 8, "scores": 8}
SMALL_INPUTS = {"rois": {"rois_per_image": 32},
                "cplugins_deeplake.bench:shapes_copies": {"images": 4, "size": (64, 80)}}
#: detectors: fewer proposals and sampled RoIs (the box head's FCs dominate a small step)
SMALL_DETECTOR = {"model.train_cfg.rpn_proposal.nms_pre": 200,
                  "model.train_cfg.rpn_proposal.max_per_img": 64,
                  "model.train_cfg.rcnn.sampler.num": 32,
                  "model.test_cfg.rpn.nms_pre": 200, "model.test_cfg.rpn.max_per_img": 64}
#: the plugins of this repository, each of which declares cases
PLUGINS = ("cplugins-augfpn", "cplugins-inception", "cplugins-embednorm", "cplugins-f1loss")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread: small steps gain nothing from two, and a shared CI machine makes
    OpenMP threads wait on each other; restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _finite(output: object) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in flatten_tensors(output)
               if t.is_floating_point())


def test_every_plugin_declares_cases():
    assert not ERRORS
    providers = {case.provider.split()[0] for case in CASES}
    assert set(PLUGINS) <= providers
    assert {"RFA-vs-literal", "SRS-vs-literal", "SRS-gather-vs-mmcv", "AugFPN", "SoftRoIExtractor",
            "FasterRCNN-R50-AugFPN-full"} <= {c.name for c in CASES}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_case_small(benchmark, case):
    if case.needs_ops and not mmcv_ops_available():
        pytest.skip(f"{case.name} needs mmcv's compiled ops")
    batch = SMALL_BATCH.get(case.generator, 1)
    if case.generator in SMALL_INPUTS:
        case = dataclasses.replace(case, inputs={**case.inputs, **SMALL_INPUTS[case.generator]})
    if case.kind == "dataloader":  # one pass of each loader, 0 workers
        modes = benchmark.pedantic(
            run_loading_case, args=(case, None, (0,), 1, 0, Timer(torch.device("cpu")),
                                    Progress(2, enabled=False)),
            rounds=1, iterations=1, warmup_rounds=0)
        result = modes["load 0w"]
        counts = {result[role]["samples_per_pass"] for role in ("module", "baseline")
                  if role in result}
        assert len(counts) == 1 and counts.pop() > 0
        return
    if case.kind == "detector":
        case = dataclasses.replace(case, module={**case.module, **SMALL_DETECTOR},
                                   baseline={**(case.baseline or {}), **SMALL_DETECTOR})
    settings = Settings(device="cpu", rounds=1, warmup=0, batch_sizes=(batch,),
                        input_size=SMALL_IMAGE, memory=False, peak=False)
    inputs, workloads, check = prepare_case(case, batch, settings, torch.device("cpu"))
    assert inputs.batch == batch
    assert [w.role for w in workloads] == ["module", "baseline"][:len(workloads)]
    if case.equivalent:
        assert check is not None and check["match"], check
    mode = "fwd+bwd" if case.kind == "module" else "train"
    for workload in workloads:  # every step of every workload once (the module's then timed)
        for step in workload.steps.values():
            assert _finite(step.run())
            step.reset()
    step = workloads[0].steps[mode]
    params = [p for p in workloads[0].module.parameters() if p.requires_grad]
    reached: list[bool] = []

    def once() -> object:
        out = step.run()
        reached.append(any(p.grad is not None for p in params))
        step.reset()
        return out

    output = benchmark.pedantic(once, rounds=1, iterations=1, warmup_rounds=0)
    assert _finite(output)
    if case.kind == "module":
        assert output.dim() == 0  # the summed outputs / loss that was backpropagated
        if params:  # backward reached the parameters, and reset dropped the gradients
            assert reached == [True]
            assert all(p.grad is None for p in params)
    else:  # the train step's log vars; the optimizer step cleared the gradients itself
        assert "loss" in output and reached == [False]
