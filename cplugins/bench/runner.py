"""Run benchmark cases: build, check, warm up, time interleaved rounds, memory, FLOPs.

Data-loading cases (``kind="dataloader"``) are run by :mod:`cplugins.bench.loading`."""
from __future__ import annotations

import datetime as _dt
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TextIO

import torch

from cplugins.bench import stats
from cplugins.bench.lite import enable_lite_mmdet
from cplugins.bench.loading import DATALOADER_MODES, run_loading_case
from cplugins.bench.measure import (
    DTYPES,
    TIMERS,
    Timer,
    count_flops,
    environment,
    matmul_peak,
    mmcv_ops_available,
    parse_device,
    peak_memory,
)
from cplugins.bench.profiling import profile_call
from cplugins.bench.workload import (
    DETECTOR_MODES,
    MODULE_MODES,
    Workload,
    build_case_modules,
    build_detector,
    compare_outputs,
    detector_workload,
    load_detector_config,
    module_workload,
    num_classes_of,
    to_channels_last,
)
from cplugins.cases import BenchmarkCase
from cplugins.inputs import Inputs, generate
from cplugins.progress import Progress

SCHEMA = "cplugins-bench/1"
ALL_MODES = MODULE_MODES + DETECTOR_MODES + DATALOADER_MODES


@dataclass
class Settings:
    """How to run (the ``cplugins bench`` options). ``batch_sizes`` entries of ``None`` use
    each case's own batch size; ``modes`` ``None`` runs every mode of a case's kind;
    ``profile`` adds one ``torch.profiler`` call per workload and mode (kernel launches);
    ``workers`` ``None`` measures each dataloader case at its own worker counts."""

    device: str = "cpu"
    dtype: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    batch_sizes: tuple = (None,)
    input_size: tuple | None = None
    rounds: int = 10
    warmup: int = 2
    modes: tuple | None = None
    timer: str = "auto"
    seed: int = 0
    memory: bool = True
    flops: bool = True
    peak: bool = True
    peak_size: int | None = None
    threads: int | None = None
    profile: bool = False
    workers: tuple | None = None

    def __post_init__(self) -> None:
        def positive(name: str, value: object, minimum: int = 1) -> None:
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")

        if self.dtype not in DTYPES:
            raise ValueError(f"dtype {self.dtype!r}: allowed: {', '.join(DTYPES)}")
        if self.timer not in TIMERS:
            raise ValueError(f"timer {self.timer!r}: allowed: {', '.join(TIMERS)}")
        positive("rounds", self.rounds)
        positive("warmup", self.warmup, 0)
        if self.compile and self.warmup < 1:
            raise ValueError("warmup must be >= 1 with compile (the first call compiles)")
        self.batch_sizes = tuple(self.batch_sizes) or (None,)
        for bs in self.batch_sizes:
            if bs is not None:
                positive("batch size", bs)
        if self.input_size is not None:
            size = tuple(self.input_size)
            if len(size) != 2:
                raise ValueError(f"input size must be H W, got {self.input_size!r}")
            for v in size:
                positive("input size", v)
            self.input_size = size
        if self.modes is not None:
            self.modes = tuple(self.modes)
            bad = [m for m in self.modes if m not in ALL_MODES]
            if bad or not self.modes:
                raise ValueError(f"mode {bad[0] if bad else self.modes!r}: allowed: "
                                 f"{', '.join(ALL_MODES)}")
        if self.threads is not None:
            positive("threads", self.threads)
        if self.peak_size is not None:
            positive("peak size", self.peak_size)
        if self.workers is not None:
            self.workers = tuple(self.workers)
            if not self.workers:
                raise ValueError("workers: give at least one worker count")
            for count in self.workers:
                positive("workers", count, 0)

    def modes_for(self, case: BenchmarkCase) -> tuple[str, ...]:
        own = {"module": MODULE_MODES, "detector": DETECTOR_MODES,
               "dataloader": DATALOADER_MODES}[case.kind]
        return own if self.modes is None else tuple(m for m in self.modes if m in own)


def _workload_count(case: BenchmarkCase) -> int:
    return 2 if case.baseline is not None else 1


def planned_calls(cases: Sequence[BenchmarkCase], settings: Settings) -> int:
    """Timed and warm-up calls the run makes (the progress total)."""
    per = settings.warmup + settings.rounds
    return sum(len(settings.modes_for(c)) * _workload_count(c) * per
               * (len(settings.workers or c.workers) if c.kind == "dataloader" else 1)
               for c in cases) * len(settings.batch_sizes)


def _build_module_case(case: BenchmarkCase, batch: int | None, settings: Settings,
                       device: torch.device, dtype: torch.dtype):
    inputs = generate(case.generator, case.generator_params, batch_size=batch,
                      input_size=settings.input_size, device=device, seed=settings.seed)
    torch.manual_seed(settings.seed)
    module, baseline = build_case_modules(case, case.baseline)
    module.to(device)
    if baseline is not None:
        baseline.to(device)
    check = compare_outputs(module, baseline, inputs) if case.equivalent else None
    if settings.channels_last:
        module.to(memory_format=torch.channels_last)
        if baseline is not None:
            baseline.to(memory_format=torch.channels_last)
        inputs = to_channels_last(inputs)
    workloads = [module_workload(case.label, "module", module, inputs, case.train_method,
                                 device, dtype, settings.compile)]
    if baseline is not None:
        workloads.append(module_workload(case.baseline_label, "baseline", baseline, inputs,
                                         case.train_method, device, dtype, settings.compile))
    return inputs, workloads, check


def _build_detector_case(case: BenchmarkCase, batch: int | None, settings: Settings,
                         device: torch.device, dtype: torch.dtype):
    if settings.compile:
        raise ValueError("--compile is not supported in whole-detector mode")
    cfg = load_detector_config(case.config, case.module)
    inputs = generate(case.generator, case.generator_params, batch_size=batch,
                      input_size=settings.input_size, device=device, seed=settings.seed,
                      extra={"num_classes": num_classes_of(cfg)})
    torch.manual_seed(settings.seed)
    models = [(case.label, "module", build_detector(cfg, device))]
    if case.baseline is not None:
        base_cfg = load_detector_config(case.baseline_config or case.config, case.baseline)
        torch.manual_seed(settings.seed)
        models.append((case.baseline_label, "baseline", build_detector(base_cfg, device)))
    if settings.channels_last:
        for _, _, model in models:
            model.to(memory_format=torch.channels_last)
    workloads = [detector_workload(label, role, model, inputs, device, dtype)
                 for label, role, model in models]
    return inputs, workloads, None


def prepare_case(case: BenchmarkCase, batch: int | None, settings: Settings,
                 device: torch.device) -> tuple[Inputs, list[Workload], dict | None]:
    """Inputs, workloads (module first, then baseline) and the output check of a case
    (module and detector cases; dataloader cases run through
    :func:`~cplugins.bench.loading.run_loading_case`)."""
    if case.kind == "dataloader":
        raise ValueError(f"benchmark case {case.name!r}: a dataloader case has no tensor "
                         "inputs or modules to prepare; run it with run_loading_case")
    build = _build_module_case if case.kind == "module" else _build_detector_case
    return build(case, batch, settings, device, DTYPES[settings.dtype])


def _measure_mode(case: BenchmarkCase, mode: str, workloads: list[Workload], settings: Settings,
                  device: torch.device, timer: Timer, progress: Progress, tag: str) -> dict:
    for workload in workloads:
        step = workload.steps[mode]
        for i in range(settings.warmup):
            step.run()
            step.reset()
            progress.update(f"{tag} {mode} {workload.label} warm-up {i + 1}/{settings.warmup}")
    samples: dict[str, list[float]] = {w.role: [] for w in workloads}
    for r in range(settings.rounds):  # interleaved: A, B, A, B ...
        for workload in workloads:
            step = workload.steps[mode]
            samples[workload.role].append(timer(step.run))
            step.reset()
            progress.update(f"{tag} {mode} {workload.label} round {r + 1}/{settings.rounds}")
    result: dict = {}
    for workload in workloads:
        step = workload.steps[mode]
        entry: dict = {"label": workload.label, "samples_ms": samples[workload.role],
                       "stats": stats.summarize(samples[workload.role])}
        if settings.memory:
            entry["memory"] = peak_memory(step.run, device)
            step.reset()
        if settings.profile:
            entry["profile"] = profile_call(step.run, device)
            step.reset()
        if settings.flops:
            total = count_flops(step.flops)
            step.reset()
            flops: dict = {"total": total}
            if mode == "fwd+bwd" and total is not None:
                forward = count_flops(workload.steps["fwd"].flops)
                flops.update(forward=forward, backward=total - forward)
            entry["flops"] = flops
            if total:
                entry["achieved_flops_per_s"] = total / (entry["stats"]["median"] / 1e3)
        result[workload.role] = entry
    if "baseline" in samples:
        result["ratio"] = stats.paired_ratio(samples["module"], samples["baseline"])
    return result


def _summary_line(tag: str, mode: str, result: dict) -> str:
    module = result["module"]
    text = f"{tag} {mode}: {module['label']} {stats.format_seconds(module['stats']['median'])}"
    if "baseline" in result:
        base = result["baseline"]
        ratio = result["ratio"]
        text += (f" vs {base['label']} {stats.format_seconds(base['stats']['median'])}"
                 f"  ratio {ratio['median']:.3f} [{ratio['p25']:.3f}, {ratio['p75']:.3f}]")
    return text


def run_case(case: BenchmarkCase, batch: int | None, settings: Settings, device: torch.device,
             timer: Timer, progress: Progress) -> dict:
    """Measure one case at one batch size; the result dict of the JSON record."""
    modes = settings.modes_for(case)
    record: dict = {"case": case.name, "kind": case.kind, "provider": case.provider,
                    "batch_size_requested": batch, "module_label": case.label,
                    "baseline_label": case.baseline_label or None, "modes": {}}
    planned = len(modes) * _workload_count(case) * (settings.warmup + settings.rounds)
    if not modes:
        record.update(status="skipped", reason=f"none of the modes {settings.modes} applies "
                                               f"to a {case.kind} case")
        return record
    if case.needs_ops and not mmcv_ops_available():
        record.update(status="skipped", reason="needs mmcv's compiled ops (full mmcv), which "
                                               "are not available here (mmcv-lite?)")
        progress.update(f"{case.name} skipped", planned)
        progress.note(f"{case.name}: skipped: {record['reason']}")
        return record
    if case.kind == "dataloader":  # host-side work: wall clock (or CPU time), never CUDA events
        host_timer = timer if timer.device.type == "cpu" else Timer(torch.device("cpu"))
        record["modes"] = run_loading_case(case, batch, settings.workers or case.workers,
                                           settings.rounds, settings.warmup, host_timer,
                                           progress, settings.seed)
        record["timer_method"] = host_timer.method
        record["batch_size"] = next(iter(record["modes"].values()))["batch_size"]
        record["status"] = "ok"
        return record
    inputs, workloads, check = prepare_case(case, batch, settings, device)
    record.update(batch_size=inputs.batch, inputs=inputs.shapes,
                  image_size=list(inputs.image_size) if inputs.image_size else None,
                  check=check)
    tag = f"{case.name} bs={inputs.batch}"
    if check is not None:
        progress.note(f"{tag}: outputs vs {case.baseline_label}: "
                      f"{'match' if check['match'] else 'DIFFER'} (max |diff| "
                      f"{check.get('max_abs_diff', float('nan')):.2e})")
    for mode in modes:
        result = _measure_mode(case, mode, workloads, settings, device, timer, progress, tag)
        record["modes"][mode] = result
        progress.note(_summary_line(tag, mode, result))
    record["status"] = "ok"
    return record


def attach_peak_fraction(results: list[dict], peak: dict) -> None:
    """Set ``peak_fraction`` (achieved FLOP/s over the matmul peak) on every measured entry."""
    for result in results:
        for res in result.get("modes", {}).values():
            for role in ("module", "baseline"):
                entry = res.get(role)
                if entry and entry.get("achieved_flops_per_s"):
                    entry["peak_fraction"] = entry["achieved_flops_per_s"] / peak["flops_per_s"]


def run(cases: Sequence[BenchmarkCase], settings: Settings, *, stream: TextIO | None = None,
        quiet: bool = False, command: list[str] | None = None) -> dict:
    """Run every case at every batch size; returns the JSON record (see ``SCHEMA``)."""
    device = parse_device(settings.device)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    lite = enable_lite_mmdet()
    timer = Timer(device, settings.timer)
    progress = Progress(planned_calls(cases, settings), stream=stream or sys.stderr,
                        enabled=not quiet)
    started = _dt.datetime.now(_dt.timezone.utc)
    peak = None
    if settings.peak and any(case.kind != "dataloader" for case in cases):
        progress.note(f"measuring the {settings.dtype} matmul peak of {device} (again at the "
                      "end; the higher one counts) ...")
        peak = matmul_peak(device, DTYPES[settings.dtype], settings.peak_size, timer=timer)
        progress.note(f"matmul peak: {stats.format_count(peak['flops_per_s'], 'FLOP/s')} "
                      f"({peak['dtype']}, n={peak['size']})")
    results = []
    for case in cases:
        for batch in settings.batch_sizes:
            try:
                results.append(run_case(case, batch, settings, device, timer, progress))
            except Exception as exc:  # report and go on with the other cases
                message = f"{type(exc).__name__}: {exc}"
                progress.note(f"{case.name}: error: {message}")
                results.append({"case": case.name, "kind": case.kind,
                                "batch_size_requested": batch, "status": "error",
                                "error": message, "modes": {}})
    if peak is not None:  # again at the end: on a shared machine take the best of both
        again = matmul_peak(device, DTYPES[settings.dtype], settings.peak_size, timer=timer)
        peak = {**peak, "samples_ms": peak["samples_ms"] + again["samples_ms"],
                "flops_per_s": max(peak["flops_per_s"], again["flops_per_s"]),
                "measurements": [peak["flops_per_s"], again["flops_per_s"]]}
        attach_peak_fraction(results, peak)
    progress.close()
    env = environment(device)
    env["lite_mmdet"] = lite
    return {
        "schema": SCHEMA,
        "created": started.isoformat(timespec="seconds"),
        "duration_s": (_dt.datetime.now(_dt.timezone.utc) - started).total_seconds(),
        "command": command,
        "environment": env,
        "settings": {**asdict(settings), "timer_method": timer.method},
        "matmul_peak": peak,
        "cases": [c.to_dict() for c in cases],
        "results": results,
    }
