"""A study: its storage, creation and compatibility checks, the trial loop and its progress.

Every input is checked before the study is created or touched: the template, the search
space, the fixed values, ``--data`` and ``--cfg-options`` (a first render), the storage, and a
study of that name that exists with another direction, metric or search space. ``n_trials``
counts finished trials (COMPLETE, PRUNED, FAIL) plus the ones running, over every process on
the study: several processes with the same ``study`` and ``storage`` share the work and stop
together at ``n_trials``; a killed process's trial is failed by heartbeat and counts.
"""
from __future__ import annotations

import os
import os.path as osp
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Callable, TextIO

from cplugins.templates.model import Template, TemplateError, TemplateValidationError, format_value
from cplugins.tune import distributed
from cplugins.tune.objective import TrialFailed, TrialSetup, follow, objective, prepare
from cplugins.tune.space import SearchSpace, TuneError, build_space
from cplugins.tune.storage import RECORD_ATTR, default_storage, open_storage

if TYPE_CHECKING:
    import optuna

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "none")
DIRECTIONS = ("maximize", "minimize")


def make_sampler(name: str, space: SearchSpace, seed: int | None) -> optuna.samplers.BaseSampler:
    """``tpe`` / ``random`` (seeded), or ``grid`` over every value of the space."""
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        return optuna.samplers.GridSampler(_grid(space), seed=seed)
    raise TuneError(f"--sampler {name}: allowed: {', '.join(SAMPLERS)}")


def _grid(space: SearchSpace) -> dict[str, list[Any]]:
    from optuna.distributions import CategoricalDistribution, IntDistribution

    grid = {}
    for name, d in space.distributions.items():
        if isinstance(d, CategoricalDistribution):
            grid[name] = list(d.choices)
        elif isinstance(d, IntDistribution) and not d.log:
            grid[name] = list(range(d.low, d.high + 1, d.step))
        elif d.step is not None and not d.log:
            count = round((d.high - d.low) / d.step)
            grid[name] = [round(d.low + i * d.step, 12) for i in range(count + 1)]
        else:
            raise TuneError(f"--sampler grid: {name} is a continuous range; a grid needs steps "
                            "or choices (use tpe or random, or fix it with --set)")
    return grid


def make_pruner(pruner: str | optuna.pruners.BasePruner | None) -> optuna.pruners.BasePruner:
    """``median`` (prune a trial below the median of earlier trials at the same step, after 2
    complete trials), ``none``, or an Optuna pruner object (Python API)."""
    import optuna

    if pruner is None or pruner == "none":
        return optuna.pruners.NopPruner()
    if pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    if isinstance(pruner, optuna.pruners.BasePruner):
        return pruner
    raise TuneError(f"--pruner {pruner}: allowed: {', '.join(PRUNERS)}")


def _record(space: SearchSpace, metric: str, data: str | None,
            overrides: Mapping[str, Any]) -> dict[str, Any]:
    return {**space.describe(), "metric": metric,
            "data": osp.abspath(data) if data is not None else None,
            "overrides": {k: overrides[k] for k in sorted(overrides)}}


def _compare(study: optuna.Study, name: str, direction: str, record: dict[str, Any]) -> None:
    """Refuse to add trials to a study made for another direction, metric or space."""
    existing = study.direction.name.lower()
    if existing != direction:
        raise TuneError(f"study {name!r} exists with --direction {existing}; this run asks for "
                        f"{direction}: give another --study name, or --direction {existing}")
    stored = study.user_attrs.get(RECORD_ATTR)
    if stored is None:
        if study.trials:
            raise TuneError(f"study {name!r} exists and was not made by cplugins tune; give "
                            "another --study name")
        return
    labels = {"template": "template", "distributions": "search space (--search)",
              "fixed": "fixed values (--set)", "metric": "--metric", "data": "--data",
              "overrides": "--cfg-options"}
    for key, label in labels.items():
        if stored.get(key) != record.get(key):
            raise TuneError(f"study {name!r} exists with another {label}: {stored.get(key)} "
                            f"(this run: {record.get(key)}); give another --study name, or the "
                            "same settings to continue it")


def _overrides(cfg_options: Sequence[str] | Mapping[str, Any] | None) -> dict[str, Any]:
    """``--cfg-options`` as a dict, plus ``randomness.seed=0`` unless they set it: every
    trial trains from the same seed, so trials differ by their values only, and a trial's
    rendered config reproduces its metric."""
    from cplugins.templates.rendering import parse_options

    overrides = parse_options(cfg_options)
    if not any(k == "randomness" or k.startswith("randomness.") for k in overrides):
        overrides["randomness.seed"] = 0
    return overrides


def _check_inputs(setup: TrialSetup) -> None:
    """Render once with the defaults and fixed values: a bad ``--data`` or ``--cfg-options``
    stops here, and the synthetic set is generated and the training data checked once."""
    from cplugins.data.check import DataCheckError, check_training_data

    space = setup.space
    try:
        cfg = setup.render(space.fixed)
    except TemplateValidationError:
        return  # the defaults need a searched value to be valid: each trial checks its own
    try:
        cfg = prepare(cfg, osp.join(setup.work_dir, "check"), setup.launcher)
        check_training_data(cfg, 100)
    except DataCheckError as exc:
        raise TuneError(str(exc)) from None


class ProgressLine:
    """One line per finished trial, with the best so far (``optimize`` callback)."""

    def __init__(self, metric: str, n_trials: int, stream: TextIO | None = None):
        self.metric, self.n_trials = metric, n_trials
        self.stream = stream or sys.stderr

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        from optuna.trial import TrialState

        from cplugins.tune.show import trial_note

        params = " ".join(f"{k}={format_value(v)}" for k, v in trial.params.items())
        if trial.state == TrialState.COMPLETE:
            note = trial_note(trial)
            outcome = f"{self.metric}={trial.value:.4g}" + (f" ({note})" if note else "")
        elif trial.state == TrialState.PRUNED:
            steps = sorted(trial.intermediate_values)
            last = trial.intermediate_values[steps[-1]] if steps else None
            outcome = (f"PRUNED at iteration {steps[-1]} ({self.metric}={last:.4g})" if steps
                       else "PRUNED")
        else:
            outcome = f"{trial.state.name}: {trial_note(trial)}"
        seconds = trial.duration.total_seconds() if trial.duration else 0.0
        done = len(study.get_trials(deepcopy=False, states=finished_states()))
        try:
            best = study.best_trial
            best_text = f"best: trial {best.number} {self.metric}={best.value:.4g}"
        except ValueError:
            best_text = "best: none yet"
        self.stream.write(f"trial {trial.number} [{done}/{self.n_trials}] {outcome} {params} "
                          f"({seconds:.1f} s) | {best_text}\n")
        self.stream.flush()


def finished_states() -> tuple:
    from optuna.trial import TrialState

    return (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def counted_states() -> tuple:
    """What ``n_trials`` counts: finished trials and the ones running (in any process)."""
    from optuna.trial import TrialState

    return (*finished_states(), TrialState.RUNNING)


def fail_stale(study: optuna.Study,
               report: Callable[[optuna.Study, Any], None] | None = None) -> None:
    """Fail the RUNNING trials whose heartbeat is stale; ``report`` each one this call failed
    (another process may fail the same trial at the same time: then both report it)."""
    import optuna
    from optuna.trial import TrialState

    running = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    if not running:
        return
    optuna.storages.fail_stale_trials(study)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        if trial.number in running and report is not None:
            report(study, trial)


def settle(study: optuna.Study, heartbeat: int,
           report: Callable[[optuna.Study, Any], None] | None = None) -> None:
    """Wait until no trial of ``study`` is RUNNING: the other processes' trials finish, a
    killed process's trial is failed once its heartbeat is stale (after ``2 * heartbeat`` s).

    A running trial counts towards ``n_trials``; without this wait a rerun that starts (and
    finishes its trials) within the grace period of a killed trial would stop with that trial
    still RUNNING and one finished trial short.
    """
    import time

    from optuna.trial import TrialState

    while study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        time.sleep(min(heartbeat, 5))
        fail_stale(study, report)


def check_study(storage: optuna.storages.BaseStorage, name: str, direction: str,
                record: dict[str, Any]) -> bool:
    """Whether study ``name`` exists; raises ``TuneError`` when it was made for another
    direction, metric or space (nothing is written)."""
    import optuna

    if name not in {s.study_name for s in optuna.get_all_study_summaries(storage)}:
        return False
    _compare(optuna.load_study(study_name=name, storage=storage), name, direction, record)
    return True


def create_study(storage: optuna.storages.BaseStorage, name: str, direction: str,
                 record: dict[str, Any], sampler: optuna.samplers.BaseSampler,
                 pruner: optuna.pruners.BasePruner) -> optuna.Study:
    """Load or create study ``name`` (another process may create it at the same time)."""
    import optuna

    study = optuna.create_study(study_name=name, storage=storage, sampler=sampler,
                                pruner=pruner, direction=direction, load_if_exists=True)
    _compare(study, name, direction, record)
    if RECORD_ATTR not in study.user_attrs:
        study.set_user_attr(RECORD_ATTR, record)
    return study


#: user attribute prefix of the sampler seeds given to the processes that ran a study
SEED_ATTR = "cplugins_seed:"


def claim_seed(study: optuna.Study, seed: int) -> int:
    """The sampler seed of this process: ``seed`` for the first process that runs ``study``
    with it; a later or concurrent one (a rerun, a second process) with the same ``seed`` gets
    a seed derived from it and its rank among them, so it does not sample the trials the
    first one sampled (it says so on stderr). Each process records its claim, then ranks the
    claims: two processes starting together rank each other the same way."""
    import socket
    import time

    import numpy as np

    prefix = f"{SEED_ATTR}{seed}:"
    key = f"{prefix}{time.time_ns():020d}:{socket.gethostname()}:{os.getpid()}"
    study.set_user_attr(key, seed)
    rank = sorted(k for k in study.user_attrs if k.startswith(prefix)).index(key)
    if rank == 0:
        return seed
    derived = int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])
    sys.stderr.write(f"--seed {seed} was given to {rank} earlier run(s) of study "
                     f"{study.study_name!r}: this process samples with seed {derived}, so that "
                     "it does not repeat their trials\n")
    return derived


def tune(template: str | Template, n_trials: int, *, metric: str,
         direction: str = "maximize", search: Sequence[str] | Mapping[str, Any] | None = None,
         fixed: Mapping[str, Any] | None = None, study_name: str | None = None,
         storage: str | None = None, data: str | os.PathLike | None = None,
         sampler: str = "tpe", seed: int | None = None,
         pruner: str | optuna.pruners.BasePruner | None = "median",
         work_dir: str | os.PathLike | None = None, launcher: str = "none",
         cfg_options: Sequence[str] | Mapping[str, Any] | None = None, task: str | None = None,
         heartbeat: int = 60, quiet: bool = True,
         progress: Callable[[optuna.Study, Any], None] | None = None) -> optuna.Study | None:
    """Search ``template``'s hyperparameters with Optuna; returns the study.

    Args:
        template: a template name (or ``TASK/NAME``) or a :class:`Template`.
        n_trials: finished trials the study should have in total (over every process).
        metric: validation metric key (e.g. ``coco/bbox_mAP``); ``direction`` says which way.
        search: hyperparameters to search (``NAME`` or ``NAME=LOW:HIGH``); default: the
            template's tunable ones. ``fixed``: values fixed for every trial (``--set``).
        study_name: default: the template's name. ``storage``: an Optuna storage URL (see
            :mod:`cplugins.tune.storage`); default ``sqlite:///<work_dir>/tune.db``.
        data: dataset folder (``None``: the task's synthetic set).
        sampler: ``tpe``, ``random`` or ``grid``; ``seed`` seeds it (a later or second process
            on the study with the same seed samples with one derived from it: see
            :func:`claim_seed`). Every trial trains with
            ``randomness.seed=0`` unless ``cfg_options`` set it.
        pruner: ``median``, ``none`` or an Optuna pruner.
        work_dir: default ``work_dirs/tune/<study>``; trial N trains in ``trial_000N``.
        launcher: mmengine launcher of each training (as ``tools/train.py --launcher``):
            start every process under it (``torchrun ... -m cplugins.cli tune ...``); rank 0
            runs the study and returns it, the other ranks train its trials and return None.
        cfg_options: config entries set on every trial's config.
        heartbeat: seconds between trial heartbeats (stale after twice that).
        quiet: keep mmengine's log lines out of the terminal.
        progress: called after each finished trial (default: one line on stderr).

    Raises:
        TuneError: bad input (nothing started, the study untouched), or a metric the
            evaluator never produces (after the first validation).
        TemplateError: an unknown template, a bad ``--data``.
    """
    import optuna

    from cplugins.templates.catalog import get_template

    if not isinstance(template, Template):
        template = get_template(template, task)
    if not isinstance(n_trials, int) or isinstance(n_trials, bool) or n_trials < 1:
        raise TuneError(f"--trials {n_trials}: give a whole number >= 1")
    if direction not in DIRECTIONS:
        raise TuneError(f"--direction {direction}: allowed: {', '.join(DIRECTIONS)}")
    if not metric:
        raise TuneError("--metric: give the validation metric key, e.g. coco/bbox_mAP")
    space = build_space(template, search, fixed)
    study_name = study_name or template.name
    work_dir = os.fspath(work_dir or osp.join("work_dirs", "tune", study_name))
    data = os.fspath(data) if data is not None else None
    samplers = make_sampler(sampler, space, seed)
    pruners = make_pruner(pruner)
    try:
        overrides = _overrides(cfg_options)
    except TemplateError as exc:
        raise TuneError(str(exc)) from None
    setup = TrialSetup(space, metric, work_dir, data, overrides, launcher, quiet, direction)
    record = _record(space, metric, data, overrides)
    if storage is None:
        os.makedirs(work_dir, exist_ok=True)
        storage = default_storage(work_dir)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our progress lines say it all
    if launcher != "none":  # rank 0 runs the study, the other ranks train its trials with it
        distributed.start(launcher)
        if distributed.rank() != 0:
            follow(setup)
            return None
    try:
        backend = open_storage(storage, heartbeat)
        check_study(backend, study_name, direction, record)
        try:  # the first render (mmengine): bad --data / --cfg-options, before the study
            _check_inputs(setup)
        except TemplateError as exc:
            raise TuneError(str(exc)) from None
        study = create_study(backend, study_name, direction, record, samplers, pruners)
        if seed is not None:
            study.sampler = make_sampler(sampler, space, claim_seed(study, seed))
        done = len(study.get_trials(deepcopy=False, states=counted_states()))
        if done >= n_trials:
            sys.stderr.write(f"study {study_name!r} has {done} trials already (--trials "
                             f"{n_trials}): nothing to run; `cplugins tune show {study_name}` "
                             "lists them\n")
        callbacks = [optuna.study.MaxTrialsCallback(n_trials, states=counted_states()),
                     progress or ProgressLine(metric, n_trials)]
        while True:
            fail_stale(study, callbacks[1])
            if len(study.get_trials(deepcopy=False, states=counted_states())) < n_trials:
                study.optimize(objective(setup), callbacks=callbacks, catch=(TrialFailed,))
            settle(study, heartbeat, callbacks[1])
            if len(study.get_trials(deepcopy=False, states=finished_states())) >= n_trials:
                return study
    finally:
        if launcher != "none":
            distributed.share(distributed.DONE)  # the other ranks return
