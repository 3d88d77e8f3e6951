"""One trial: sampled values -> validated template -> a training run -> the metric.

Each trial renders the template with its values (the template's own validation and
cross-checks apply: an invalid combination fails that trial, with the reason, and the study
goes on), trains with mmengine's ``Runner`` in ``WORK_DIR/trial_NNNN`` and reports the metric
after every validation (:class:`TrialReportHook`), where the pruner may stop it. The trial's
value is the metric of its last validation: the model its config produces.
"""
from __future__ import annotations

import contextlib
import os
import os.path as osp
import socket
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cplugins.templates.model import TemplateError, TemplateValidationError
from cplugins.tune.distributed import DONE, share
from cplugins.tune.space import SearchSpace, TuneError

if TYPE_CHECKING:
    import optuna
    from mmengine.config import Config


class TrialFailed(Exception):
    """This trial failed (its reason is the trial's ``fail_reason``); the study goes on."""


class InvalidCombination(TrialFailed):
    """The sampled values fail the template's cross-checks."""


class MetricNotFound(TuneError):
    """The evaluator does not produce the metric: the study stops, naming the keys it has."""


@dataclass
class TrialSetup:
    """What every trial of a study shares.

    Args:
        space: the search space (template and fixed values).
        metric: the validation metric key, e.g. ``coco/bbox_mAP``.
        work_dir: each trial trains in ``work_dir/trial_NNNN``.
        data: ``--data`` folder (``None``: the synthetic set).
        overrides: config entries set after rendering (``--cfg-options``).
        launcher: mmengine launcher of each training (``none``, ``pytorch``, ...).
        quiet: keep mmengine's log lines out of the terminal (they stay in the trial's log).
        direction: ``maximize`` or ``minimize``: which value is a validation's worst (see
            :func:`worst_value`).
    """

    space: SearchSpace
    metric: str
    work_dir: str
    data: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    launcher: str = "none"
    quiet: bool = True
    direction: str = "maximize"

    def render(self, values: Mapping[str, Any]) -> Config:
        """The rendered config of ``values`` (raises the template's errors)."""
        from cplugins.templates.rendering import render

        return render(self.space.template, values, data=self.data,
                      overrides=dict(self.overrides) or None)


class Follower:
    """What ranks > 0 train with instead of the Optuna trial (rank 0 owns it): the trial's
    number; reports and attributes stay with rank 0, which answers ``should_prune``."""

    def __init__(self, number: int):
        self.number = number

    def report(self, value: float, step: int) -> None:
        pass

    def set_user_attr(self, key: str, value: Any) -> None:
        pass

    def should_prune(self) -> None:
        return None  # :func:`share` replaces it with rank 0's answer


class TrialReportHook:
    """Reports the metric to the trial after each validation; raises ``TrialPruned`` when the
    pruner says so and :class:`MetricNotFound` when the evaluator lacks the metric."""

    priority = "LOW"

    def __init__(self, trial: optuna.Trial, metric: str):
        self.trial, self.metric = trial, metric
        self.value: float | None = None
        self.metrics: dict[str, Any] = {}

    def after_val_epoch(self, runner, metrics: Mapping[str, Any] | None = None) -> None:
        import optuna

        metrics = dict(metrics or {})
        if self.metric not in metrics:
            error = MetricNotFound(f"--metric {self.metric}: the evaluator produced "
                                   f"{', '.join(sorted(metrics)) or 'no metric'}; choose one "
                                   "of those")
            self.trial.set_user_attr("fail_reason", str(error))
            raise error
        self.value, self.metrics = float(metrics[self.metric]), metrics
        self.trial.report(self.value, step=runner.iter)
        if share(self.trial.should_prune()):  # rank 0's answer on every rank
            raise optuna.TrialPruned(f"{self.metric}={self.value:.4g} at iteration "
                                     f"{runner.iter}: pruned")


def _as_hook(report: TrialReportHook):
    """``report`` as an mmengine ``Hook`` (mmengine imported only when a trial trains)."""
    from mmengine.hooks import Hook

    class _Hook(Hook):
        priority = report.priority

        def after_val_epoch(self, runner, metrics=None) -> None:
            report.after_val_epoch(runner, metrics)

    return _Hook()


def prepare(cfg: Config, work_dir: str, launcher: str) -> Config:
    """The trial's config: prepared as ``tools/train.py`` prepares it
    (:func:`cplugins.training.prepare.prepare_for_training`: work dir, launcher, the synthetic
    set, the training safeguards and the plugin lock; no progress display), returned without
    yapf formatting of the text mmengine logs and dumps (seconds a trial, same content)."""
    from mmengine.config import Config

    from cplugins.training.prepare import prepare_for_training

    cfg = prepare_for_training(cfg, work_dir=work_dir, launcher=launcher, progress=False)
    return Config(cfg.to_dict(), filename=cfg.filename, format_python_code=False)


def own_names(cfg: Config, number: int) -> None:
    """Give the trial's runner its own mmengine singletons (logger, message hub, visualizer:
    named global instances). Configs name their visualizer (mmdet: ``'visualizer'``), and
    a second runner in the process would get the first one's, logging into its folder."""
    cfg.experiment_name = f"trial_{number:04d}"  # the runner appends its timestamp
    if isinstance(cfg.get("visualizer"), dict):
        cfg.visualizer.pop("name", None)  # default: the experiment name


def release(runner) -> None:
    """Drop the finished runner's named singletons and close its log file (a long study
    would otherwise keep every trial's open)."""
    import logging

    from mmengine.logging import MessageHub, MMLogger

    name = runner.experiment_name
    for manager in (type(runner.visualizer), MessageHub, MMLogger):
        manager._instance_dict.pop(name, None)
    for handler in list(runner.logger.handlers):
        if isinstance(handler, logging.FileHandler):
            handler.close()
            runner.logger.removeHandler(handler)


def run_trial(trial: optuna.Trial, setup: TrialSetup) -> float:
    """Train one trial; returns its metric.

    Raises ``TrialPruned``; :class:`TrialFailed` (an invalid combination, a training stopped
    by a NaN loss...) with the reason in the trial's ``fail_reason``; :class:`MetricNotFound`.
    """
    started = time.perf_counter()
    trial.set_user_attr("process", f"{socket.gethostname()}:{os.getpid()}")
    values = setup.space.suggest(trial)
    try:
        setup.space.template.validate(values)
    except TemplateValidationError as exc:
        reason = "; ".join(exc.errors)
        trial.set_user_attr("fail_reason", reason)
        raise InvalidCombination(f"trial {trial.number}: {reason}") from None
    share((trial.number, values))  # the other ranks of a --launcher run train it too
    return train(trial, setup, values, started)


def train(trial: optuna.Trial | Follower, setup: TrialSetup, values: dict[str, Any],
          started: float | None = None) -> float:
    """Render ``values``, train them in the trial's work dir; returns the metric."""
    started = time.perf_counter() if started is None else started
    work_dir = osp.join(setup.work_dir, f"trial_{trial.number:04d}")
    trial.set_user_attr("work_dir", osp.abspath(work_dir))
    from mmengine.runner import Runner

    import cplugins.all  # noqa: F401  (registers every plugin, as tools/train.py does)
    from cplugins.diagnose import explain_unknown_types
    from cplugins.training.errors import EmptyValidationError, TrainingError

    try:
        cfg = setup.render(values)
    except TemplateError as exc:  # e.g. a rendered number that is not finite
        trial.set_user_attr("fail_reason", str(exc).splitlines()[0])
        raise TrialFailed(f"trial {trial.number}: {exc}") from None
    cfg = prepare(cfg, work_dir, setup.launcher)
    own_names(cfg, trial.number)
    report = TrialReportHook(trial, setup.metric)
    with contextlib.ExitStack() as stack:
        if setup.quiet:  # mmengine's log stream, prints and warnings: the trial's folder
            os.makedirs(work_dir, exist_ok=True)
            out = stack.enter_context(open(osp.join(work_dir, "stdout.log"), "a"))
            stack.enter_context(contextlib.redirect_stdout(out))
            stack.enter_context(warnings.catch_warnings())
            warnings.showwarning = lambda message, category, filename, lineno, *_: out.write(
                warnings.formatwarning(message, category, filename, lineno))
        with explain_unknown_types():
            runner = Runner.from_cfg(cfg)
        runner.register_hook(_as_hook(report), priority=report.priority)
        train_start = time.perf_counter()
        try:
            runner.train()
        except EmptyValidationError as exc:  # a valid, bad trial: the sampler learns from it
            report.value = worst_value(setup.direction)
            trial.set_user_attr("note", f"recorded as {setup.metric}={report.value:g} (the "
                                f"worst value): {str(exc).splitlines()[0]}")
        except TrainingError as exc:  # e.g. a learning rate so high the loss is NaN
            trial.set_user_attr("fail_reason", str(exc).splitlines()[0])
            raise TrialFailed(f"trial {trial.number}: {exc}") from None
        finally:
            trial.set_user_attr("train_seconds", round(time.perf_counter() - train_start, 3))
            trial.set_user_attr("seconds", round(time.perf_counter() - started, 3))
            if report.metrics:
                trial.set_user_attr("metrics", {k: v for k, v in report.metrics.items()
                                                if isinstance(v, (int, float, str))})
            release(runner)
    if report.value is None:
        raise MetricNotFound(f"--metric {setup.metric}: the training ran no validation; "
                             "validate at least once (train_cfg.val_interval)")
    return report.value


def worst_value(direction: str) -> float:
    """The value of a trial whose validation had no result to score (a detector that predicts
    no box): the worst a metric can be, 0 for a score to maximize (mAP, accuracy, IoU are
    >= 0) and infinity for one to minimize."""
    return 0.0 if direction == "maximize" else float("inf")


def objective(setup: TrialSetup):
    """``trial -> metric`` for ``study.optimize``."""
    return lambda trial: run_trial(trial, setup)


def follow(setup) -> None:
    """Ranks > 0: train every trial rank 0 sends until it sends :data:`DONE`."""
    import optuna

    while True:
        message = share()
        if message is DONE:
            return
        number, values = message
        try:
            train(Follower(number), setup, values)
        except (optuna.TrialPruned, TrialFailed, MetricNotFound):
            continue  # rank 0 records it, then sends the next trial or DONE
