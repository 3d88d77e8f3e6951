"""The full benchmark sweep, one command, for a machine with a GPU (or ``--device cpu``).

    python benchmarks/gpu_sweep.py                      # CUDA: every run below
    python benchmarks/gpu_sweep.py --runs fp32 bf16     # some of them
    python benchmarks/gpu_sweep.py --device cpu --runs fp32 --rounds 10    # the same on CPU

Runs (each a ``cplugins bench`` invocation over the declared cases plus ``benchmarks/cases.py``):

* ``fp32``: every module case at its own size (AugFPN vs FPN, RFA / SRS vs their literal
  references, SoftRoIExtractor vs SingleRoIExtractor, Inception vs ResNet-50, heads, losses);
* ``bf16``: the same under bf16 autocast, each workload profiled once (kernel launches, GPU
  busy share, top kernels: what limits the neck);
* ``bf16-channels-last``: the convolutional cases in channels-last layout;
* ``bf16-batch``: the AugFPN neck at batch 1, 2, 4, 8;
* ``detectors``, ``detectors-fp16``: whole-detector train step and inference in fp32 and
  under fp16 autocast (mmdet's AMP; mmcv's RoIAlign kernels have no bf16);
* ``bf16-compile`` (only with ``--compile``): torch.compile'd neck and RFA.

Each run writes ``OUT/<run>/bench.json`` and ``bench.png``; ``OUT/summary.md`` compares the
figures with the issue's targets. Needs only pure-Python wheels besides torch for the module
cases (mmengine, mmdet, mmcv-lite: cplugins' lite mode); cases that need mmcv's compiled ops
(RoI extractors, detectors) are reported as skipped without them.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import fnmatch
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASES_FILE = HERE / "cases.py"

#: run name -> (case patterns, settings overrides)
RUNS: dict[str, tuple[list[str], dict]] = {
    "fp32": (["*"], dict(dtype="fp32")),
    "bf16": (["*"], dict(dtype="bf16", profile=True)),
    "bf16-channels-last": (["AugFPN", "RFA-vs-literal", "SRS-vs-literal", "InceptionV4",
                            "BNInception"], dict(dtype="bf16", channels_last=True)),
    "bf16-batch": (["AugFPN"], dict(dtype="bf16", batch_sizes=(1, 2, 4, 8))),
    "detectors": (["*"], dict(dtype="fp32")),
    "detectors-fp16": (["*"], dict(dtype="fp16")),
    "bf16-compile": (["AugFPN", "RFA-vs-literal"], dict(dtype="bf16", compile=True)),
}
DEFAULT_RUNS = ["fp32", "bf16", "bf16-channels-last", "bf16-batch", "detectors",
                "detectors-fp16"]


def _pick(cases: list, patterns: list[str], detectors: bool) -> list:
    return [c for c in cases if (c.kind == "detector") == detectors
            and any(fnmatch.fnmatchcase(c.name, p) for p in patterns)]


def _find(records: dict, run: str, case: str, batch: int | None = None) -> dict | None:
    for result in (records.get(run) or {}).get("results", []):
        if result["case"] == case and result.get("status") == "ok" and (
                batch is None or result.get("batch_size") == batch):
            return result
    return None


def _ratio(result: dict | None, mode: str) -> str:
    if result is None or mode not in result["modes"]:
        return "not measured"
    r = result["modes"][mode]["ratio"]
    return f"{r['median']:.3f} [{r['p25']:.3f}-{r['p75']:.3f}]"


def _inverse(result: dict | None, mode: str) -> str:
    if result is None or mode not in result["modes"]:
        return "not measured"
    r = result["modes"][mode]["ratio"]
    return f"{1 / r['median']:.2f}x [{1 / r['p75']:.2f}-{1 / r['p25']:.2f}]"


def summary(records: dict, device: str) -> str:
    """Markdown: the measured figures next to the issue's targets."""
    from cplugins.bench.report import markdown_table
    from cplugins.bench.stats import format_count

    gpu = device.startswith("cuda")
    any_record = next(iter(records.values()))
    env = any_record["environment"]
    lines = [f"# Sweep on {env['device_name']} ({device})", "",
             f"torch {env['torch']}, cuda {env['cuda']}, cudnn {env['cudnn']}, "
             f"mmcv ops {env['mmcv_ops']}, lite mmdet {env.get('lite_mmdet')}; "
             f"created {any_record['created']}", "",
             "| target | run | measured (median [quartiles]) |", "| --- | --- | --- |"]
    for run in ("fp32", "bf16"):
        lines.append(f"| AugFPN fwd+bwd <= 1.05x FPN | {run} | "
                     f"{_ratio(_find(records, run, 'AugFPN'), 'fwd+bwd')} |")
        rfa_target = "1.5x" if gpu else "1.2x"
        lines.append(f"| RFA >= {rfa_target} faster than literal (fwd+bwd) | {run} | "
                     f"{_inverse(_find(records, run, 'RFA-vs-literal'), 'fwd+bwd')} |")
        lines.append(f"| SRS no slower than literal (fwd+bwd) | {run} | "
                     f"{_inverse(_find(records, run, 'SRS-vs-literal'), 'fwd+bwd')} |")
        lines.append(f"| SRS pooling: gather / mmcv backend (fwd+bwd; `auto` = "
                     f"{'mmcv' if gpu else 'gather'} here) | {run} | "
                     f"{_ratio(_find(records, run, 'SRS-gather-vs-mmcv'), 'fwd+bwd')} |")
    for run in ("detectors", "detectors-fp16"):
        for name in sorted({r["case"] for r in (records.get(run) or {}).get("results", [])}):
            result = _find(records, run, name)
            lines.append(f"| {name} train <= 1.25x | {run} | {_ratio(result, 'train')} |")
            lines.append(f"| {name} inference <= 1.10x | {run} | {_ratio(result, 'infer')} |")
    neck = _find(records, "bf16", "AugFPN")
    peak = (records.get("bf16") or {}).get("matmul_peak")
    if neck is not None:
        lines += ["", "## AugFPN neck, bf16: achieved FLOP/s and what limits it", ""]
        for mode in ("fwd", "fwd+bwd"):
            for role in ("module", "baseline"):
                entry = neck["modes"][mode][role]
                prof = entry.get("profile") or {}
                share = entry.get("peak_fraction")
                share_text = f"{100 * share:.1f}%" if share is not None else "n/a"
                lines.append(
                    f"- {mode} {entry['label']}: "
                    f"{format_count(entry.get('achieved_flops_per_s'), 'FLOP/s')}"
                    f" = {share_text} of the measured bf16 matmul peak "
                    f"({format_count((peak or {}).get('flops_per_s'), 'FLOP/s')}); "
                    f"{prof.get('launches')} "
                    f"{prof.get('unit', '')}, busy {prof.get('busy_ms', 0):.2f} of "
                    f"{prof.get('wall_ms', 0):.2f} ms; top: "
                    + ", ".join(f"{t['name']} {t['self_ms']:.2f} ms x{t['count']}"
                                for t in prof.get("top", [])[:4]))
    batch = [_find(records, "bf16-batch", "AugFPN", b) for b in (1, 2, 4, 8)]
    if any(batch):
        lines += ["", "## AugFPN / FPN by batch size (bf16, fwd+bwd)", ""]
        for b, result in zip((1, 2, 4, 8), batch):
            lines.append(f"- batch {b}: {_ratio(result, 'fwd+bwd')}")
    for run, record in records.items():
        lines += ["", f"## {run}", "", markdown_table(record)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument("--runs", nargs="+", choices=list(RUNS), default=None,
                        help=f"which runs (default: {' '.join(DEFAULT_RUNS)})")
    parser.add_argument("--compile", action="store_true", help="add the bf16-compile run")
    parser.add_argument("--rounds", type=int, default=30, help="rounds of module cases")
    parser.add_argument("--detector-rounds", type=int, default=10, help="rounds of detectors")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--cases", nargs="+", metavar="PATTERN",
                        help="only the cases matching these names / shell patterns")
    parser.add_argument("--peak-size", type=int, help="matmul peak n (default 8192 GPU)")
    parser.add_argument("--batch-size", type=int, nargs="+",
                        help="override the batch sizes (smoke runs)")
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"),
                        help="override the image size (smoke runs)")
    parser.add_argument("--out", help="output folder (default benchmarks/results/<device>-<time>)")
    args = parser.parse_args(argv)

    import cplugins  # noqa: F401  (compat fixes before torchvision / mmdet)
    from cplugins.bench import report
    from cplugins.bench.collect import collect_cases
    from cplugins.bench.measure import parse_device
    from cplugins.bench.runner import Settings, run

    try:
        device = parse_device(args.device)
    except ValueError as exc:
        print(f"gpu_sweep: {exc}", file=sys.stderr)
        return 2
    runs = list(args.runs or DEFAULT_RUNS) + (["bf16-compile"] if args.compile else [])
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out or HERE / "results" / f"{device.type}-{stamp}")
    cases, _, errors = collect_cases([str(CASES_FILE)])
    for error in errors:
        print(f"warning: benchmark cases of {error}", file=sys.stderr)
    records: dict[str, dict] = {}
    for name in runs:
        patterns, overrides = RUNS[name]
        detectors = name.startswith("detectors")
        chosen = _pick(cases, patterns, detectors)
        if args.cases:
            chosen = _pick(chosen, args.cases, detectors)
        if not chosen:
            print(f"[{name}] no matching case", file=sys.stderr)
            continue
        overrides = dict(overrides)
        if args.batch_size:
            overrides["batch_sizes"] = tuple(args.batch_size)
        settings = Settings(device=str(device), threads=args.threads, warmup=args.warmup,
                            rounds=args.detector_rounds if detectors else args.rounds,
                            input_size=tuple(args.input_size) if args.input_size else None,
                            peak_size=args.peak_size, **overrides)
        print(f"[{name}] {', '.join(c.name for c in chosen)}", file=sys.stderr)
        record = run(chosen, settings, command=[sys.executable, *sys.argv])
        records[name] = record
        report.write_json(record, out / name / "bench.json")
        report.write_chart(record, out / name / "bench.png")
        print(report.format_table(record) + "\n")
    if not records:
        return 1
    text = summary(records, str(device))
    (out / "summary.md").write_text(text)
    print(text)
    print(f"records, charts and summary.md in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
