"""Benchmark harness internals: input generators, measurement primitives, workloads, runner."""
from __future__ import annotations

import json
import time

import pytest
import torch
from torch import nn

import cplugins  # noqa: F401  (before torchvision / mmdet: arms the compat fixes)
from cplugins.bench import report
from cplugins.bench.measure import Timer, count_flops, matmul_peak, parse_device, peak_memory
from cplugins.bench.runner import Settings, run
from cplugins.bench.workload import module_workload, scalar_for_backward, to_channels_last
from cplugins.cases import BenchmarkCase
from cplugins.inputs import feature_size, generate, pyramid_shapes


def test_pyramid_shapes_of_faster_rcnn_r50():
    shapes = pyramid_shapes([256, 512, 1024, 2048], [4, 8, 16, 32], (800, 1216), 2)
    assert shapes == [(2, 256, 200, 304), (2, 512, 100, 152), (2, 1024, 50, 76),
                      (2, 2048, 25, 38)]
    assert feature_size(801, 32) == 26  # every stride-2 stage rounds up (ResNet padding)
    with pytest.raises(ValueError, match="strides must be powers of two, got 12"):
        feature_size(100, 12)
    with pytest.raises(ValueError, match=r"channels \[256\] and strides \[4, 8\] must have"):
        pyramid_shapes([256], [4, 8], (64, 64), 1)


def test_generators_shapes_and_overrides():
    pyramid = generate("feature_pyramid", dict(channels=[8, 16], strides=[4, 8],
                                               image_size=(64, 96), batch=2),
                       batch_size=3, input_size=(32, 40))
    (feats,) = pyramid.args
    assert [tuple(f.shape) for f in feats] == [(3, 8, 8, 10), (3, 16, 4, 5)]
    assert all(f.requires_grad and f.is_leaf for f in feats)
    assert pyramid.batch == 3 and pyramid.image_size == (32, 40)
    scores = generate("scores", dict(logits=(16, 5), labels="multilabel", weight=(16,)),
                      batch_size=4)
    logits, labels, weight = scores.args
    assert logits.shape == (4, 5) and labels.shape == (4, 5) and weight.shape == (4,)
    assert set(labels.unique().tolist()) <= {0.0, 1.0}
    ints = generate("scores", dict(logits=(6, 3), labels="int")).args[1]
    assert ints.dtype == torch.int64 and int(ints.max()) < 3
    feats_a = generate("image", dict(shape=(1, 3, 8, 8)), seed=1).args[0]
    feats_b = generate("image", dict(shape=(1, 3, 8, 8)), seed=1).args[0]
    assert torch.equal(feats_a, feats_b) and not feats_a.requires_grad
    rois = generate("rois", dict(channels=[4, 4], strides=[4, 8], image_size=(64, 64),
                                 batch=2, rois_per_image=5))
    boxes = rois.args[1]
    assert boxes.shape == (10, 5) and set(boxes[:, 0].tolist()) == {0.0, 1.0}
    assert bool((boxes[:, 3] > boxes[:, 1]).all()) and float(boxes[:, 1:].max()) <= 64
    with pytest.raises(ValueError, match=r"input parameter labels must be 'int' or "
                                         r"'multilabel', got 'soft'"):
        generate("scores", dict(logits=(4, 3), labels="soft"))
    with pytest.raises(ValueError, match=r"input parameter batch_size must be an int > 0, "
                                         r"got 0"):
        generate("image", dict(shape=(1, 3, 8, 8)), batch_size=0)


def test_flops_timer_memory_and_peak():
    linear = nn.Linear(64, 32)
    x = torch.randn(8, 64)
    assert count_flops(lambda: linear(x)) == 2 * 8 * 64 * 32
    timer = Timer(torch.device("cpu"), "events")  # on the CPU events / sync: perf_counter
    assert timer.method == "perf_counter" and timer(lambda: time.sleep(0.05)) >= 45
    cpu_time = Timer(torch.device("cpu"), "process")  # CPU time: a sleeping call costs ~0
    assert cpu_time(lambda: time.sleep(0.05)) < 20
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="timer 'process' measures CPU time"):
            Timer(torch.device("cuda"), "process")

    size = 256 * 2**20

    def allocate() -> None:
        buffer = torch.ones(size // 4)  # written: every page resident
        assert float(buffer[-1]) == 1.0

    grown = peak_memory(allocate, torch.device("cpu"), interval=0.0002)
    assert grown["bytes"] > 0.8 * size, grown
    peak = matmul_peak(torch.device("cpu"), torch.float32, size=128, rounds=2)
    assert peak["flops"] == 2 * 128**3 and peak["flops_per_s"] > 0
    with pytest.raises(ValueError, match="--device 'tpu': allowed: cpu, cuda, cuda:N"):
        parse_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="--device 'cuda': CUDA is not available"):
            parse_device("cuda")


def test_module_workload_steps_and_channels_last():
    conv = nn.Conv2d(4, 6, 3, padding=1)
    inputs = generate("feature_pyramid", dict(channels=[4], strides=[4], image_size=(32, 32),
                                              batch=2, single=True))
    inputs = to_channels_last(inputs)
    (x,) = inputs.args
    assert x.is_leaf and x.requires_grad and x.is_contiguous(memory_format=torch.channels_last)
    conv.to(memory_format=torch.channels_last)
    work = module_workload("conv", "module", conv, inputs, "forward", torch.device("cpu"),
                           torch.bfloat16)
    out = work.steps["fwd"].run()
    assert out.dtype == torch.bfloat16 and not out.requires_grad  # autocast, no grad
    loss = work.steps["fwd+bwd"].run()
    assert loss.dim() == 0 and conv.weight.grad is not None and x.grad is not None
    work.steps["fwd+bwd"].reset()
    assert conv.weight.grad is None and x.grad is None
    with pytest.raises(ValueError, match="train_method 'loss' is not a method of Conv2d"):
        module_workload("conv", "module", conv, inputs, "loss", torch.device("cpu"),
                        torch.float32)
    with pytest.raises(ValueError, match="no tensor that requires grad"):
        scalar_for_backward({"acc": torch.ones(2)}, "head")


def test_settings_validation():
    with pytest.raises(ValueError, match="rounds must be an int >= 1, got 0"):
        Settings(rounds=0)
    with pytest.raises(ValueError, match="dtype 'fp64': allowed: fp32, bf16, fp16"):
        Settings(dtype="fp64")
    with pytest.raises(ValueError, match="mode 'backward': allowed: fwd, fwd[+]bwd, infer"):
        Settings(modes=("backward",))
    with pytest.raises(ValueError, match="warmup must be >= 1 with compile"):
        Settings(compile=True, warmup=0)


def test_run_records_samples_ratio_flops_and_chart(tmp_path):
    """The runner end to end in-process: an equivalent pair (two 1x1 convolutions given the
    same weights), interleaved samples, ratio, FLOPs, memory, a failing case, report files."""
    conv = dict(type="torch.nn:Conv2d", in_channels=3, out_channels=4, kernel_size=1)
    images = dict(generator="image", shape=(2, 3, 8, 8))
    case = BenchmarkCase("conv-twins", conv, images, baseline=conv, baseline_label="Conv-copy",
                         weight_sync="cplugins.bench.sync:share_weights", equivalent=True,
                         scope="mmengine")
    broken = BenchmarkCase("broken", dict(conv, in_channels=7), images, scope="mmengine")
    settings = Settings(rounds=3, warmup=1, peak_size=64, batch_sizes=(4, 8))
    record = run([case, broken], settings, quiet=True, command=["test"])
    ok = [r for r in record["results"] if r["status"] == "ok"]
    errors = [r for r in record["results"] if r["status"] == "error"]
    assert [r["batch_size"] for r in ok] == [4, 8] == [r["batch_size_requested"] for r in ok]
    assert len(errors) == 2 and errors[0]["error"].startswith("RuntimeError")
    first = ok[0]
    assert first["check"]["match"] and first["check"]["max_abs_diff"] == 0.0
    train = first["modes"]["fwd+bwd"]
    assert len(train["module"]["samples_ms"]) == 3 == len(train["baseline"]["samples_ms"])
    assert train["ratio"]["n"] == 3 and train["ratio"]["median"] > 0
    forward = 2 * 4 * 8 * 8 * 3 * 4  # images need no gradient: backward = weight gradient
    assert train["module"]["flops"] == {"total": 2 * forward, "forward": forward,
                                        "backward": forward}
    assert first["modes"]["fwd"]["module"]["flops"] == {"total": forward}
    assert train["module"]["memory"]["bytes"] >= 0
    assert train["module"]["peak_fraction"] > 0
    assert record["environment"]["torch"] == torch.__version__
    assert record["matmul_peak"]["size"] == 64
    table = report.format_table(record)
    assert "conv-twins" in table and "Conv-copy" in table and "error" in table
    path = report.write_json(record, tmp_path / "bench.json")
    assert json.loads(path.read_text())["schema"] == "cplugins-bench/1"
    chart = report.write_chart(record, tmp_path / "bench.png")
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
