"""Data-loading cases (``kind="dataloader"``): samples/s of mmengine dataloaders over full passes.

The case's inputs generator writes the data once (``func(root, **params)``) and returns the
values of the ``"{placeholders}"`` in the two dataloader configs (a string that is exactly one
placeholder takes the value itself, e.g. a tuple of class names; others are formatted). Per
worker count both loaders are built (persistent workers, the same seed), warmed up, then timed
over full passes, interleaved A B, B A, ... (the order alternates so neither always runs
second); numpy's global seed is set before every pass, so with 0 workers both see the same
random augmentations.
"""
from __future__ import annotations

import copy
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cplugins.bench import stats
from cplugins.bench.measure import Timer
from cplugins.cases import BenchmarkCase
from cplugins.manager import import_target
from cplugins.progress import Progress

DATALOADER_MODES = ("load",)


def prepare_data(case: BenchmarkCase, root: Path) -> dict[str, Any]:
    """Run the case's generator: it writes the data under ``root``; returns the placeholders."""
    values = import_target(case.generator)(root, **case.generator_params)
    if not isinstance(values, Mapping):
        raise ValueError(f"benchmark case {case.name!r}: generator {case.generator!r} must "
                         f"return a dict of placeholder values, got {type(values).__name__}")
    return {str(k): v for k, v in values.items()}


def fill_placeholders(cfg: Any, values: Mapping[str, Any], case: str) -> Any:
    """A copy of ``cfg`` with ``"{name}"`` in its strings replaced by ``values[name]`` (the
    value itself where the whole string is ``"{name}"``)."""
    if isinstance(cfg, Mapping):
        return {k: fill_placeholders(v, values, case) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(fill_placeholders(v, values, case) for v in cfg)
    if isinstance(cfg, str) and "{" in cfg:
        names = [name for _, name, _, _ in string.Formatter().parse(cfg) if name is not None]
        unknown = sorted(set(names) - set(values))
        if unknown:
            raise ValueError(f"benchmark case {case!r}: placeholder(s) {unknown} in {cfg!r}; "
                             f"the generator gives: {', '.join(sorted(values)) or 'none'}")
        whole = cfg[1:-1]
        if cfg == "{" + whole + "}" and whole in values:
            return copy.deepcopy(values[whole])
        return cfg.format_map(values)
    return copy.deepcopy(cfg)


def build_loader(cfg: dict, scope: str, workers: int, batch_size: int | None, seed: int):
    """An mmengine-built DataLoader from ``cfg`` with ``workers`` persistent workers."""
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

    from cplugins.diagnose import explain_unknown_types
    from cplugins.manager import get_manager

    get_manager().activate_all()  # the dataset / transforms may come from any plugin
    cfg = dict(cfg, num_workers=workers, persistent_workers=workers > 0)
    cfg.setdefault("sampler", dict(type="DefaultSampler", shuffle=False))
    if batch_size is not None:
        cfg["batch_size"] = batch_size
    with DefaultScope.overwrite_default_scope(scope), explain_unknown_types():
        return Runner.build_dataloader(cfg, seed=seed)


def samples_in(batch: Any) -> int:
    """Samples in one batch: ``len`` of its ``inputs`` (mmengine collates) or of the batch."""
    if isinstance(batch, Mapping) and "inputs" in batch:
        batch = batch["inputs"]
    return len(batch)


class LoaderPass:
    """One full pass over a loader (the timed call); ``samples`` counts the last pass."""

    def __init__(self, loader) -> None:
        self.loader = loader
        self.samples = 0

    def __call__(self) -> int:
        self.samples = sum(samples_in(batch) for batch in self.loader)
        return self.samples


def _entry(label: str, ms_per_sample: list[float], samples: int) -> dict:
    rates = [1e3 / ms for ms in ms_per_sample]
    return {"label": label, "samples_ms": ms_per_sample, "stats": stats.summarize(ms_per_sample),
            "samples_per_s": stats.summarize(rates), "samples_per_pass": samples}


def measure_loaders(loaders: list[tuple[str, str, Any]], rounds: int, warmup: int,
                    timer: Timer, progress: Progress, tag: str, seed: int = 0) -> dict:
    """Time ``(label, role, loader)`` pairs over full passes, interleaved with alternating
    order. Entries per role hold ms per sample (``samples_ms``, ``stats``) and samples/s;
    ``ratio`` is time module / baseline per pass, ``throughput_ratio`` samples/s module /
    baseline per pass (both median and quartiles)."""
    import numpy as np

    passes = {role: LoaderPass(loader) for _, role, loader in loaders}
    for label, role, _ in loaders:
        for i in range(warmup):  # workers started, files and datasets opened
            np.random.seed(seed)
            passes[role]()
            progress.update(f"{tag} {label} warm-up {i + 1}/{warmup}")
    samples: dict[str, list[float]] = {role: [] for _, role, _ in loaders}
    for r in range(rounds):
        for label, role, _ in (loaders if r % 2 == 0 else loaders[::-1]):
            np.random.seed(seed + r + 1)  # the same augmentations for both (0 workers)
            elapsed = timer(passes[role])
            if not passes[role].samples:
                raise ValueError(f"{label}: the dataloader yielded no samples")
            samples[role].append(elapsed / passes[role].samples)
            progress.update(f"{tag} {label} pass {r + 1}/{rounds}")
    result: dict = {role: _entry(label, samples[role], passes[role].samples)
                    for label, role, _ in loaders}
    if "baseline" in samples:
        result["ratio"] = stats.paired_ratio(samples["module"], samples["baseline"])
        result["throughput_ratio"] = stats.paired_ratio(samples["baseline"], samples["module"])
    return result


def summary_line(tag: str, mode: str, result: dict) -> str:
    """``tag mode: A 150.2 samples/s vs B 148.0 samples/s  samples/s ratio 1.015 [p25, p75]``."""
    module = result["module"]
    text = f"{tag} {mode}: {module['label']} {module['samples_per_s']['median']:.1f} samples/s"
    if "baseline" in result:
        base, ratio = result["baseline"], result["throughput_ratio"]
        text += (f" vs {base['label']} {base['samples_per_s']['median']:.1f} samples/s  "
                 f"samples/s ratio {ratio['median']:.3f} [{ratio['p25']:.3f}, "
                 f"{ratio['p75']:.3f}]")
    return text


def run_loading_case(case: BenchmarkCase, batch: int | None, workers: tuple[int, ...],
                     rounds: int, warmup: int, timer: Timer, progress: Progress,
                     seed: int = 0) -> dict:
    """The ``modes`` of a dataloader case's record: ``"load Nw"`` per worker count."""
    import tempfile

    modes: dict = {}
    with tempfile.TemporaryDirectory(prefix=f"cplugins-bench-{case.name}-") as tmp:
        values = prepare_data(case, Path(tmp))
        configs = [(case.label, "module", case.module)]
        if case.baseline is not None:
            configs.append((case.baseline_label, "baseline", case.baseline))
        configs = [(label, role, fill_placeholders(cfg, values, case.name))
                   for label, role, cfg in configs]
        for count in workers:
            mode = f"load {count}w"
            loaders = [(label, role, build_loader(cfg, case.scope, count, batch, seed))
                       for label, role, cfg in configs]
            tag = f"{case.name} bs={loaders[0][2].batch_size}"
            result = measure_loaders(loaders, rounds, warmup, timer, progress, tag, seed)
            result["workers"] = count
            counts = {result[role]["samples_per_pass"] for _, role, _ in configs}
            if len(counts) > 1:
                progress.note(f"{tag} {mode}: warning: the loaders yield different numbers of "
                              f"samples per pass ({', '.join(map(str, sorted(counts)))}): "
                              "not the same data")
            result["batch_size"] = loaders[0][2].batch_size
            modes[mode] = result
            progress.note(summary_line(tag, mode, result))
            del loaders  # persistent workers end here
    return modes
