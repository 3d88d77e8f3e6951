"""``cplugins bench`` end to end (subprocesses, CPU, small sizes, no timing assertions)."""
from __future__ import annotations

import json
import textwrap

import pytest
import torch
from helpers import REPO, run_python

from cplugins.cli import main

FAST = ["--device", "cpu", "--threads", "1", "--warmup", "0", "--rounds", "1", "--no-peak"]
DEMO = "configs/augfpn/faster-rcnn_r18_augfpn_400i_shapes.py"


def bench(*args: str, **kwargs):
    return run_python("", args=["-m", "cplugins.cli", "bench", *args], cwd=REPO, **kwargs)


def test_bench_writes_table_json_chart_and_progress(tmp_path):
    snippet = tmp_path / "my_case.py"  # a case from a config snippet instead of a plugin
    snippet.write_text(textwrap.dedent("""
        bench_case = dict(
            module=dict(type='SoftF1Loss', activation='sigmoid'),
            baseline=dict(type='CrossEntropyLoss', use_sigmoid=True),
            inputs=dict(generator='scores', logits=(8, 5), labels='multilabel'),
            scope='mmpretrain')
    """))
    result = bench("SoftF1Loss-rcnn", str(snippet), "--device", "cpu", "--rounds", "3",
                   "--warmup", "1", "--peak-size", "64", "--batch-size", "64", "--threads", "1",
                   "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "SoftF1Loss-rcnn bs=64 fwd+bwd: SoftF1Loss" in result.stderr  # progress lines
    assert "matmul peak:" in result.stderr
    assert "SoftF1Loss-rcnn  64  fwd+bwd  SoftF1Loss" in result.stdout  # the table
    record = json.loads((tmp_path / "bench.json").read_text())
    assert record["settings"]["device"] == "cpu" and record["settings"]["rounds"] == 3
    assert record["environment"]["torch"] == torch.__version__
    res, mine = record["results"]
    assert res["status"] == "ok" and res["baseline_label"] == "CrossEntropyLoss"
    assert res["inputs"] == "logits 64x81, labels int, weight 64"
    assert mine["case"] == "my_case" and mine["status"] == "ok"
    assert mine["inputs"] == "logits 64x5, labels multilabel" and mine["provider"] == str(snippet)
    for mode in ("fwd", "fwd+bwd"):
        entry = res["modes"][mode]
        assert len(entry["module"]["samples_ms"]) == 3 == len(entry["baseline"]["samples_ms"])
        assert entry["ratio"]["n"] == 3
    assert (tmp_path / "bench.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("args, message", [
    (["AugFPM"], "NAME 'AugFPM' matches no benchmark case (did you mean AugFPN?)"),
    ([], "give at least one NAME"),
    (["SoftF1Loss", "--rounds", "0"], "rounds must be an int >= 1, got 0"),
    (["SoftF1Loss", "--batch-size", "0"], "batch size must be an int >= 1, got 0"),
    (["SoftF1Loss", "--options", "loss_weight"], "--options 'loss_weight': must look like "
                                                 "KEY=VALUE"),
    (["missing.py"], "NAME 'missing.py': no such config file"),
    (["SoftF1Loss", "--device", "npu"], "--device 'npu': allowed: cpu, cuda, cuda:N"),
    (["SoftF1Loss", "--workers", "-1"], "workers must be an int >= 0, got -1"),
])
def test_bench_bad_arguments_name_the_value(args, message, capsys):
    assert main(["bench", *args]) == 2  # in-process: these fail before anything runs
    assert f"cplugins bench: error: {message}" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_bench_cuda_without_gpu_says_so(capsys):
    assert main(["bench", "SoftF1Loss", "--device", "cuda"]) == 2
    assert "--device 'cuda': CUDA is not available" in capsys.readouterr().err


def test_whole_detector_mode_from_a_config(tmp_path):
    result = bench(DEMO, "--baseline-options", "model.neck.type=FPN", "--mode", "infer",
                   "--input-size", "64", "96", "--batch-size", "1", "--no-memory",
                   "--out", str(tmp_path), *FAST)
    assert result.returncode == 0, result.stderr
    (res,) = json.loads((tmp_path / "bench.json").read_text())["results"]
    assert res["status"] == "ok" and res["kind"] == "detector"
    assert res["baseline_label"] == "baseline(model.neck.type=FPN)"
    assert res["inputs"] == "1x3x64x96 uint8, 8 boxes/image" and list(res["modes"]) == ["infer"]
    infer = res["modes"]["infer"]
    # AugFPN = FPN + the RFA branch: more FLOPs than the same detector with FPN
    assert infer["module"]["flops"]["total"] > infer["baseline"]["flops"]["total"] > 0


def test_module_benchmarks_run_without_mmcv_ops(tmp_path):
    """mmcv-lite: mmdet.models cannot be imported, FPN / AugFPN still build (lite namespace),
    cases that need the compiled ops are skipped; bf16 autocast and channels-last on CPU."""
    code = textwrap.dedent(f"""
        import importlib.abc, sys

        class NoOps(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name == "mmcv._ext":
                    raise ImportError("no compiled mmcv ops (simulated mmcv-lite)")

        sys.meta_path.insert(0, NoOps())
        from cplugins.cli import main
        code = main(["bench", "AugFPN", "RFA-vs-literal", "FasterRCNN-R50-AugFPN",
                     "--plugin", "benchmarks/cases.py", "--mode", "fwd", "--mode", "infer",
                     "--batch-size", "1", "--input-size", "64", "96", "--dtype", "bf16",
                     "--channels-last", "--no-chart", "--out", {str(tmp_path)!r},
                     *{FAST!r}])
        print("LITE", type(sys.modules["mmdet.models"]).__name__,
              getattr(sys.modules["mmdet.models"], "cplugins_lite", False))
        sys.exit(code)
    """)
    result = run_python(code, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "LITE module True" in result.stdout
    record = json.loads((tmp_path / "bench.json").read_text())
    assert record["environment"]["lite_mmdet"] is True
    assert record["environment"]["mmcv_ops"] is False
    assert record["settings"]["dtype"] == "bf16" and record["settings"]["channels_last"]
    status = {r["case"]: r["status"] for r in record["results"]}
    assert status == {"AugFPN": "ok", "RFA-vs-literal": "ok", "FasterRCNN-R50-AugFPN": "skipped"}
    rfa = next(r for r in record["results"] if r["case"] == "RFA-vs-literal")
    assert rfa["check"]["match"], rfa["check"]  # float32 check, before autocast timing


def _gpu_sweep():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_sweep", REPO / "benchmarks" / "gpu_sweep.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_sweep_script_runs_the_same_code_on_cpu(tmp_path, capsys):
    sweep = _gpu_sweep()
    if not torch.cuda.is_available():
        assert sweep.main(["--device", "cuda"]) == 2
        assert "--device 'cuda': CUDA is not available" in capsys.readouterr().err
    code = sweep.main(["--device", "cpu", "--runs", "fp32", "--cases", "AugFPN", "--rounds", "1",
                       "--warmup", "0", "--batch-size", "1", "--input-size", "64", "96",
                       "--threads", "1", "--peak-size", "64", "--out", str(tmp_path)])
    assert code == 0
    record = json.loads((tmp_path / "fp32" / "bench.json").read_text())
    assert record["settings"]["dtype"] == "fp32" and record["matmul_peak"]["size"] == 64
    assert [r["case"] for r in record["results"]] == ["AugFPN"]
    assert (tmp_path / "fp32" / "bench.png").is_file()
    text = (tmp_path / "summary.md").read_text()
    ratio = record["results"][0]["modes"]["fwd+bwd"]["ratio"]["median"]
    assert f"| AugFPN fwd+bwd <= 1.05x FPN | fp32 | {ratio:.3f} [" in text
    assert "| AugFPN fwd+bwd <= 1.05x FPN | bf16 | not measured |" in text


def test_bench_config_snippet_with_unknown_fields_is_rejected(tmp_path, capsys):
    bad = tmp_path / "typo.py"
    bad.write_text("bench_case = dict(modul=dict(type='SoftF1Loss'), "
                   "inputs=dict(generator='scores', logits=(4, 3)))\n")
    assert main(["bench", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"NAME '{bad}': bench_case has unknown fields ['modul'] / lacks ['module']" in err


#: a data-loading case on stock mmdet parts: the shapes COCO folder through two pipelines
LOADING_CASE = textwrap.dedent("""
    _load = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True)]
    _coco = dict(type='CocoDataset', data_root='{data_root}', ann_file='{train_ann_file}',
                 data_prefix=dict(img='{train_img_prefix}'), metainfo=dict(classes='{classes}'))
    bench_case = dict(
        kind='dataloader', workers=WORKERS,
        module=dict(batch_size=2, collate_fn=dict(type='pseudo_collate'),
                    dataset=dict(_coco, pipeline=_load + [
                        dict(type='Resize', scale=(80, 64)), dict(type='PackDetInputs')])),
        baseline=dict(batch_size=2, collate_fn=dict(type='pseudo_collate'),
                      dataset=dict(_coco, pipeline=_load + [dict(type='PackDetInputs')])),
        baseline_label='no-resize',
        inputs=dict(generator='cplugins.shapes:make_shapes_detection', num_train=5,
                    num_val=1, image_size=(32, 40)))
""")


def test_dataloader_case_reports_samples_per_second_and_their_ratio(tmp_path):
    snippet = tmp_path / "loading.py"
    snippet.write_text(LOADING_CASE.replace("WORKERS", "(0,)"))
    result = bench(str(snippet), *FAST, "--rounds", "2", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stderr.splitlines() if "load 0w:" in x)
    assert line.startswith("loading bs=2 load 0w: CocoDataset ")
    assert " samples/s vs no-resize " in line and " samples/s ratio " in line
    assert "loading  2   load 0w  CocoDataset " in result.stdout  # the table
    record = json.loads((tmp_path / "bench.json").read_text())
    assert record["matmul_peak"] is None  # data loading alone: no matmul peak
    res = record["results"][0]
    assert res["kind"] == "dataloader" and res["status"] == "ok"
    assert res["timer_method"] == "perf_counter"  # host-side work: the wall clock
    entry = res["modes"]["load 0w"]
    for role in ("module", "baseline"):  # every image once per pass, 2 timed passes
        assert entry[role]["samples_per_pass"] == 5
        assert len(entry[role]["samples_ms"]) == 2
    # samples/s ratio = module / baseline per pass (the inverse of the time ratio)
    module_rates = [1e3 / ms for ms in entry["module"]["samples_ms"]]
    base_rates = [1e3 / ms for ms in entry["baseline"]["samples_ms"]]
    per_pass = sorted(m / b for m, b in zip(module_rates, base_rates))
    assert entry["throughput_ratio"]["median"] == pytest.approx(sum(per_pass) / 2)
    assert entry["ratio"]["median"] == pytest.approx(sum(1 / r for r in per_pass) / 2)
    assert f"{entry['throughput_ratio']['median']:.3f}" in line


@pytest.mark.parametrize("change, message", [
    ("bench_case['workers'] = (-1,)",
     "workers must be worker counts (ints >= 0, e.g. (0, 2)), got (-1,)"),
    ("bench_case['module'] = dict(batch_size=2)",
     "module of a dataloader case is an mmengine dataloader config with a dataset=dict(type="),
    ("bench_case['inputs'] = dict(generator='image')",
     "a dataloader case needs inputs generator='package.module:func'"),
])
def test_bad_dataloader_case_is_one_clear_error(tmp_path, capsys, change, message):
    snippet = tmp_path / "loading.py"
    snippet.write_text(LOADING_CASE.replace("WORKERS", "(0,)") + change + "\n")
    assert main(["bench", str(snippet), *FAST]) == 2
    err = capsys.readouterr().err
    assert f"cplugins bench: error: benchmark case 'loading': {message}" in err


def test_dataloader_case_with_an_unknown_placeholder_names_it(tmp_path):
    snippet = tmp_path / "loading.py"
    snippet.write_text(LOADING_CASE.replace("WORKERS", "(0,)").replace("{train_ann_file}",
                                                                       "{ann}"))
    result = bench(str(snippet), *FAST, "--out", str(tmp_path))
    assert result.returncode == 1
    assert "loading: error: ValueError: benchmark case 'loading': placeholder(s) ['ann'] in " \
           "'{ann}'; the generator gives: " in result.stderr


def test_dataloader_case_takes_only_none_as_baseline(tmp_path, capsys):
    snippet = tmp_path / "loading.py"
    snippet.write_text(LOADING_CASE.replace("WORKERS", "(0,)"))
    assert main(["bench", str(snippet), *FAST, "--baseline", "FPN"]) == 2
    assert ("cplugins bench: error: --baseline 'FPN': case 'loading' is a dataloader case; "
            "give 'none' or --baseline-options KEY=VALUE") in capsys.readouterr().err
