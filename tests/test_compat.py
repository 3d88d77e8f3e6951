"""Each compat fix: armed at import, applied only when its module is imported, and correct."""
from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch
from helpers import run_python

import cplugins  # noqa: F401  (arms the fixes before anything below imports torchvision)
from cplugins import compat


def test_nothing_heavy_is_imported_or_applied_by_import_cplugins():
    code = textwrap.dedent("""
        import sys
        import cplugins
        from cplugins import compat
        print(sorted(m for m in ("torch", "torchvision", "numpy", "mmengine") if m in sys.modules),
              compat.APPLIED)
    """)
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[] []"


def test_torchvision_imports_and_mmpretrain_models_load():
    code = textwrap.dedent("""
        import cplugins
        from cplugins import compat
        import torchvision, mmpretrain.models, mmdet.models
        print("OK", compat.APPLIED)
    """)
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout and "torchvision-ops" in result.stdout


def test_mmdet_benchmark_tools_import():
    """mmdet's tools/analysis_tools/benchmark.py runs on mmdet.utils.benchmark, which imports
    psutil without mmdet declaring it: the pinned stack carries it."""
    result = run_python("import cplugins, mmdet.utils.benchmark as b; "
                        "print(b.InferenceBenchmark.__name__, b.DataLoaderBenchmark.__name__)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["InferenceBenchmark", "DataLoaderBenchmark"]


def test_without_cplugins_torchvision_still_fails_here():
    """Guards the test above: the breakage is real on this stack (else the fix is moot)."""
    result = run_python("import torchvision")
    if result.returncode == 0:
        pytest.skip("torchvision's own ops load on this machine; the fix is not needed")
    assert "torchvision::nms" in result.stderr


def test_nms_reference_matches_mmcv_nms():
    from mmcv.ops import nms as mmcv_nms

    generator = torch.Generator().manual_seed(0)
    xy = torch.rand(200, 2, generator=generator) * 100
    wh = torch.rand(200, 2, generator=generator) * 30 + 1
    boxes = torch.cat([xy, xy + wh], 1)
    scores = torch.rand(200, generator=generator)
    ours = compat.nms_reference(boxes, scores, 0.5)
    _, theirs = mmcv_nms(boxes, scores, 0.5)
    assert torch.equal(ours, theirs)
    if "torchvision-ops" in compat.APPLIED:  # the op we defined dispatches to it
        assert torch.equal(torch.ops.torchvision.nms(boxes, scores, 0.5), ours)


def test_numpy_in1d_restored_for_mmpretrain_retrieval():
    import mmpretrain.evaluation.metrics.retrieval as retrieval

    a = np.array([[1, 2], [3, 4]])
    np.testing.assert_array_equal(np.in1d(a, [2, 3]), [False, True, True, False])
    np.testing.assert_array_equal(np.in1d(a, [2, 3], invert=True), [True, False, False, True])
    # the metric that calls it computes a real value
    pred = np.array([[0.9, 0.1, 0.5], [0.2, 0.8, 0.1]])
    recall = retrieval.RetrievalRecall.calculate(pred, [[0], [2]], topk=2)
    assert [float(r) for r in recall] == [50.0]


def test_ssd_predict_runs():
    from mmdet.models.dense_heads import SSDHead
    from mmdet.structures import DetDataSample
    from mmengine.config import ConfigDict

    head = SSDHead(num_classes=3, in_channels=(16, 16, 16), stacked_convs=0, feat_channels=16,
                   anchor_generator=dict(type="SSDAnchorGenerator", scale_major=False,
                                         input_size=64, min_sizes=[8, 16, 32],
                                         max_sizes=[16, 32, 64],
                                         strides=[8, 16, 32], ratios=[[2], [2], [2]]),
                   test_cfg=ConfigDict(nms_pre=100, nms=dict(type="nms", iou_threshold=0.45),
                                       min_bbox_size=0, score_thr=0.02, max_per_img=20))
    feats = (torch.rand(1, 16, 8, 8), torch.rand(1, 16, 4, 4), torch.rand(1, 16, 2, 2))
    sample = DetDataSample(metainfo=dict(img_shape=(64, 64), scale_factor=(1.0, 1.0)))
    results = head.predict(feats, [sample], rescale=False)
    assert results[0].bboxes.shape[1] == 4
    assert "mmdet-ssd-loss-cls" in compat.APPLIED


def test_checkpoint_round_trip_keeps_weights_only_protection(tmp_path):
    from mmengine.logging import HistoryBuffer
    from mmengine.runner.checkpoint import load_checkpoint, save_checkpoint

    model = torch.nn.Linear(3, 2)
    meta = {"hist": HistoryBuffer([1.0, 2.0], [1, 1]), "arr": np.arange(3), "f": np.float64(1.5),
            "dtype": np.dtype("float32")}
    path = tmp_path / "ckpt.pth"
    save_checkpoint({"state_dict": model.state_dict(), "meta": meta}, str(path))
    clone = torch.nn.Linear(3, 2)
    checkpoint = load_checkpoint(clone, str(path))
    assert torch.equal(clone.weight, model.weight)
    assert checkpoint["meta"]["arr"].tolist() == [0, 1, 2]
    assert "torch-load-safe-globals" in compat.APPLIED

    # the protection is still on: other classes, and getattr, are refused
    import argparse

    for i, payload in enumerate([argparse.Namespace(a=1), HistoryBuffer.min]):
        torch.save({"x": payload}, tmp_path / f"evil{i}.pth")
        with pytest.raises(Exception, match="Unsupported global"):
            torch.load(tmp_path / f"evil{i}.pth")
