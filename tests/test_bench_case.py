"""Benchmark cases: the declarative dataclass, the hook, collection and selection (no torch)."""
from __future__ import annotations

import re
import textwrap

import pytest
from helpers import REPO, run_python

from cplugins.bench.cli import apply_options, parse_options
from cplugins.bench.stats import paired_ratio, quartiles, summarize
from cplugins.cases import BenchmarkCase, cases_from_dicts, select

NECK = dict(type="AugFPN", in_channels=[256, 512], out_channels=64, num_outs=2)
INPUTS = dict(generator="feature_pyramid", channels=[256, 512], strides=[4, 8],
              image_size=(64, 64), batch=1)


def test_case_defaults_and_label():
    case = BenchmarkCase("neck", NECK, INPUTS, baseline=dict(NECK, type="FPN"))
    assert case.label == "AugFPN" and case.baseline_label == "FPN"
    assert case.generator == "feature_pyramid"
    assert case.generator_params == {k: v for k, v in INPUTS.items() if k != "generator"}
    assert case.to_dict()["inputs"]["image_size"] == [64, 64]
    target = BenchmarkCase("t", dict(type="pkg.mod:Literal"), INPUTS,
                           baseline=dict(type="ref_mod:Ref"))
    assert target.label == "Literal" and target.baseline_label == "Ref"


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="bad name"), "benchmark case name 'bad name'"),
    (dict(module=dict(in_channels=3)), "module needs a 'type'"),
    (dict(module="AugFPN"), "module must be a dict, got 'AugFPN'"),
    (dict(inputs=dict(generator="pixels")), "inputs generator='pixels'; allowed: image"),
    (dict(scope="mmfoo"), "scope='mmfoo'; allowed: mmcv, mmdet"),
    (dict(kind="model"), "kind='model'; allowed: module, detector"),
    (dict(kind="detector", module={}), "a detector case needs config="),
    (dict(config="x.py"), "only used with kind='detector'"),
    (dict(train_method="not a name"), "train_method must be a method name"),
    (dict(weight_sync="copy"), "weight_sync must look like 'package.module:func'"),
    (dict(equivalent=True), "equivalent=True needs a baseline"),
    (dict(workers=(1,)), "workers is only used with kind='dataloader'"),
])
def test_case_rejects_bad_fields(kwargs, message):
    fields = {"name": "neck", "module": NECK, "inputs": INPUTS, **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        BenchmarkCase(**fields)


def test_cases_from_plugin_dicts():
    records = [{"name": "Head", "module": dict(type="EmbedNormClsHead", num_classes=10),
                "baseline": "LinearClsHead", "baseline_module": dict(type="LinearClsHead"),
                "inputs": {"feats": (4, 8), "labels": "int"}, "scope": "mmpretrain"},
               {"name": "Alone", "module": dict(type="SoftF1Loss"),
                "inputs": {"logits": (4, 3)}}]
    head, alone = cases_from_dicts(records, "cls_features", inputs_from_module=("num_classes",),
                                   train_method="loss")
    assert head.inputs == {"generator": "cls_features", "feats": (4, 8), "labels": "int",
                           "num_classes": 10}
    assert head.scope == "mmpretrain" and head.train_method == "loss"
    assert head.baseline_label == "LinearClsHead"
    assert alone.baseline is None and alone.baseline_label == "" and alone.scope == "mmdet"
    with pytest.raises(ValueError, match="lacks key 'inputs'"):
        cases_from_dicts([{"name": "x", "module": dict(type="A")}], "scores")


def test_select_patterns_and_unknown_names():
    cases = [BenchmarkCase(n, NECK, INPUTS) for n in ("AugFPN", "SoftF1Loss", "SoftF1Loss-rcnn")]
    assert [c.name for c in select(cases, ["SoftF1Loss"])] == ["SoftF1Loss"]
    assert [c.name for c in select(cases, ["Soft*", "AugFPN"])] == [
        "SoftF1Loss", "SoftF1Loss-rcnn", "AugFPN"]
    assert len(select(cases, ["all"])) == 3
    with pytest.raises(ValueError, match=r"NAME 'AugFPM' matches no benchmark case \(did you "
                                         r"mean AugFPN\?\); declared cases: AugFPN, "):
        select(cases, ["AugFPM"])


def test_stats():
    assert quartiles([4.0, 1.0, 3.0, 2.0])[1] == 2.5
    assert quartiles([1.0, 2.0, 3.0, 4.0, 5.0])[0] == 2.0
    s = summarize([3.0, 1.0, 2.0])
    assert (s["median"], s["min"], s["max"], s["n"]) == (2.0, 1.0, 3.0, 3)
    r = paired_ratio([2.0, 4.0, 3.0], [1.0, 2.0, 3.0])
    assert r["median"] == 2.0 and r["of_medians"] == 1.5 and r["p25"] == 1.5
    with pytest.raises(ValueError, match="equally long"):
        paired_ratio([1.0], [1.0, 2.0])


def test_cli_options():
    assert parse_options(["model.neck.type=FPN", "a=[1, 2]", "b=2"], "--options") == {
        "model.neck.type": "FPN", "a": [1, 2], "b": 2}
    with pytest.raises(ValueError, match="--baseline-options 'FPN': must look like KEY=VALUE"):
        parse_options(["FPN"], "--baseline-options")
    assert apply_options(dict(type="A", cfg=dict(x=1)), {"cfg.x": 2, "y": 3}) == {
        "type": "A", "cfg": {"x": 2}, "y": 3}


def test_plugins_declare_cases_without_importing_torch():
    code = textwrap.dedent("""
        import sys
        from cplugins.bench.collect import collect_cases
        from cplugins.cli import build_parser
        build_parser()
        cases, owners, errors = collect_cases(["benchmarks/cases.py"])
        heavy = sorted(m for m in ("torch", "mmdet", "mmengine", "mmpretrain")
                       if m in sys.modules)
        print("HEAVY", heavy, "ERRORS", errors)
        for case in cases:
            print("CASE", case.name, case.kind, case.provider.split()[0])
    """)
    result = run_python(code, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "HEAVY [] ERRORS []" in result.stdout
    providers = {line.split()[3] for line in result.stdout.splitlines()
                 if line.startswith("CASE")}
    assert {"cplugins-augfpn", "cplugins-inception", "cplugins-embednorm",
            "cplugins-f1loss"} <= providers
    assert "CASE RFA-vs-literal module" in result.stdout
    assert "CASE FasterRCNN-R50-AugFPN detector cplugins-augfpn" in result.stdout


def test_collect_reports_broken_and_duplicate_providers(tmp_path):
    ok = tmp_path / "extra_ok.py"
    ok.write_text(textwrap.dedent("""
        from cplugins import hookimpl
        from cplugins.bench import BenchmarkCase

        @hookimpl
        def cplugins_benchmark_cases():
            return [BenchmarkCase("AugFPN", dict(type="FPN"), dict(generator="image",
                                                                     shape=(1, 3, 8, 8)))]
    """))
    broken = tmp_path / "extra_broken.py"
    broken.write_text(textwrap.dedent("""
        from cplugins import hookimpl

        @hookimpl
        def cplugins_benchmark_cases():
            return ["not a case"]
    """))
    code = textwrap.dedent(f"""
        from cplugins.bench.collect import collect_cases
        cases, owners, errors = collect_cases([{str(broken)!r}])
        print("ERRORS", errors)
        try:
            collect_cases([{str(ok)!r}])
        except ValueError as exc:
            print("DUPLICATE", exc)
    """)
    result = run_python(code, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "must return BenchmarkCase objects, got 'not a case'" in result.stdout
    assert "DUPLICATE benchmark case 'AugFPN' is declared twice: by cplugins-augfpn 0.1.0 " \
           f"and by {ok}" in result.stdout
