"""Each compat fix: opt-in (``cplugins.compat.apply``), applied only when its module is
imported and the breakage is present, and correct; ``import cplugins`` applies none."""
from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
import torch
from helpers import run_python

from cplugins import compat  # applied by the repository's conftest.py (its opt-in)

#: a process without the repository's opt-in (conftest passes CPLUGINS_COMPAT=1 on)
NO_OPT_IN = {"CPLUGINS_COMPAT": "0"}


def test_nothing_heavy_is_imported_or_applied_by_import_cplugins():
    code = textwrap.dedent("""
        import sys
        import cplugins
        from cplugins import compat
        print(sorted(m for m in ("torch", "torchvision", "numpy", "mmengine") if m in sys.modules),
              compat.APPLIED, compat.ARMED)
    """)
    result = run_python(code, env=NO_OPT_IN)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[] [] False"


def test_torchvision_imports_and_mmpretrain_models_load():
    code = textwrap.dedent("""
        from cplugins import compat
        compat.apply()
        import torchvision, mmpretrain.models, mmdet.models
        print("OK", compat.APPLIED)
    """)
    result = run_python(code, env=NO_OPT_IN)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout and "torchvision-ops" in result.stdout


def test_mmdet_benchmark_tools_import():
    """mmdet's tools/analysis_tools/benchmark.py runs on mmdet.utils.benchmark, which imports
    psutil without mmdet declaring it: the pinned stack carries it."""
    result = run_python("import cplugins.compat; cplugins.compat.apply(); "
                        "import mmdet.utils.benchmark as b; "
                        "print(b.InferenceBenchmark.__name__, b.DataLoaderBenchmark.__name__)",
                        env=NO_OPT_IN)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["InferenceBenchmark", "DataLoaderBenchmark"]


def test_without_cplugins_torchvision_still_fails_here():
    """Guards the test above: the breakage is real on this stack (else the fix is moot)."""
    result = run_python("import torchvision", env=NO_OPT_IN)
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


def test_reading_a_checkpoints_lock_keeps_the_process_allowlist(tmp_path):
    """``cplugins.lock`` loads with the checkpoint types allowed for that call only; torch's
    ``safe_globals`` context removes on exit what it was given, so the opted-in process lost
    its allowlist and ``--resume`` then refused mmengine's own checkpoint (seen in the torchrun
    tests). In a fresh process: opt in, save, read the lock, load as mmengine does."""
    code = textwrap.dedent(f"""
        import torch
        import cplugins.compat
        cplugins.compat.apply()
        from mmengine.logging import HistoryBuffer
        from mmengine.runner.checkpoint import _load_checkpoint, save_checkpoint
        from cplugins.lock import read_lock
        path = {str(tmp_path / 'ckpt.pth')!r}
        meta = {{"hist": HistoryBuffer([1.0], [1]), "cplugins_lock": []}}
        save_checkpoint({{"state_dict": {{}}, "meta": meta}}, path)
        before = len(torch.serialization.get_safe_globals())
        print("LOCK", read_lock(path))
        print("KEPT", len(torch.serialization.get_safe_globals()) == before)
        print("LOADED", type(_load_checkpoint(path)["meta"]["hist"]).__name__)
    """)
    result = run_python(code, env={"CPLUGINS_COMPAT": "0"})
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines()
             if line.startswith(("LOCK", "KEPT", "LOADED"))]
    assert lines == ["LOCK []", "KEPT True", "LOADED HistoryBuffer"], result.stdout[-2000:]


def test_importing_cplugins_and_a_plugin_changes_nothing_outside_cplugins():
    """Without the opt-in, cplugins and its plugin discovery leave numpy and torchvision as they
    were: importing torchvision ends as it does without cplugins. The one import hook discovery
    adds watches only mmengine's registry module (cplugins' own plugin machinery: pending
    activations, explained unknown types), nothing the compatibility fixes touch."""
    probe = textwrap.dedent("""
        import sys
        finders = list(sys.meta_path)
        {imports}
        hooks = getattr(sys.modules.get("wrapt.importer"), "_post_import_hooks", {{}})
        watched = sorted(name for name, waiting in hooks.items() if waiting)
        import numpy
        try:
            import torchvision
            outcome = "imported"
        except Exception as exc:
            outcome = type(exc).__name__ + ": " + str(exc)
        print(repr((watched, "in1d" in numpy.__dict__, outcome)))
    """)
    plain = run_python(probe.format(imports="pass"), env=NO_OPT_IN)
    with_plugin = run_python(probe.format(imports=(
        "import cplugins\n"
        "from cplugins.manager import get_manager\n"
        "get_manager().discover()\n"
        "from cplugins import compat\n"
        "assert not compat.ARMED and compat.APPLIED == []")), env=NO_OPT_IN)
    assert plain.returncode == 0 and with_plugin.returncode == 0, with_plugin.stderr[-2000:]
    assert with_plugin.stdout.strip() == plain.stdout.strip().replace(
        "([], ", "(['mmengine.registry.registry'], ")
    assert plain.stdout.startswith("([], ")


def test_the_opt_ins_apply_the_fixes_and_doctor_says_which_are_needed_and_ran():
    """``compat.apply()`` (a user's script), the repository's tools and the runtime module of
    saved configs opt in; ``cplugins doctor`` reports need (as the stack shows it) and state."""
    code = textwrap.dedent("""
        import json, sys
        sys.path.insert(0, "tools")
        from cplugins import compat
        assert not compat.ARMED
        {opt_in}
        import torchvision  # fails on this machine without the fix
        print(json.dumps({{r["name"]: r["state"] for r in compat.report()}}))
    """)
    broken = run_python("import torchvision", env=NO_OPT_IN).returncode != 0
    for opt_in in ("compat.apply()", "import train, test, demo",
                   "import cplugins.templates.runtime"):
        result = run_python(code.format(opt_in=opt_in), env=NO_OPT_IN)
        assert result.returncode == 0, (opt_in, result.stderr[-2000:])
        states = json.loads(result.stdout.strip().splitlines()[-1])
        assert states["torchvision-ops"] == ("applied" if broken else "not needed"), opt_in
        if opt_in == "compat.apply()":  # mmpretrain's retrieval metrics not imported yet
            assert states["numpy-in1d"] == "armed"
    result = run_python("", env=NO_OPT_IN, args=["-m", "cplugins.cli", "doctor", "--json"])
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)["fixes"]}
    assert rows["torchvision-ops"]["needed"] is broken
    assert rows["numpy-in1d"]["needed"] is ("in1d" not in np.__dict__ or
                                            np.in1d is compat.in1d)
    assert all(r["state"] in ("armed", "applied", "not needed") for r in rows.values())
    text = run_python("", env=NO_OPT_IN, args=["-m", "cplugins.cli", "doctor"])
    assert "cplugins.compat.apply()" in text.stdout and "torchvision-ops" in text.stdout
