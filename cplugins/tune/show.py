"""A study's results: the trial table, the best trial, its config, and charts."""
from __future__ import annotations

import os
import os.path as osp
from typing import TYPE_CHECKING, Any

from cplugins.templates.model import format_value
from cplugins.tune.space import SearchSpace, TuneError

if TYPE_CHECKING:
    import optuna
    from mmengine.config import Config

#: chart file name -> the ``optuna.visualization.matplotlib`` function drawing it
CHARTS = {"history.png": "plot_optimization_history",
          "importances.png": "plot_param_importances",
          "slice.png": "plot_slice"}


def load(study_name: str, storage: str) -> optuna.Study:
    """An existing study (``TuneError`` naming the studies there when it is missing)."""
    import optuna

    from cplugins.tune.storage import open_storage

    backend = open_storage(storage)
    names = sorted(s.study_name for s in optuna.get_all_study_summaries(backend))
    if study_name not in names:
        raise TuneError(f"no study {study_name!r} in {storage}; it holds: "
                        f"{', '.join(names) or 'no study'}")
    return optuna.load_study(study_name=study_name, storage=backend)


def _record(study: optuna.Study) -> dict[str, Any]:
    from cplugins.tune.storage import RECORD_ATTR

    record = study.user_attrs.get(RECORD_ATTR)
    if record is None:
        raise TuneError(f"study {study.study_name!r} was not made by cplugins tune")
    return record


def space_of(study: optuna.Study) -> SearchSpace:
    """The search space a study was made with (from its record)."""
    from optuna.distributions import json_to_distribution

    from cplugins.templates.catalog import get_template

    record = _record(study)
    template = get_template(record["template"])
    return SearchSpace(template, {k: json_to_distribution(v)
                                  for k, v in record["distributions"].items()},
                       dict(record["fixed"]))


def _duration(trial: optuna.trial.FrozenTrial) -> str:
    return f"{trial.duration.total_seconds():.1f}s" if trial.duration else "-"


#: the note of a trial failed by heartbeat: its process was killed or lost
NO_HEARTBEAT = "its process stopped (no heartbeat)"


def trial_note(trial: optuna.trial.FrozenTrial) -> str:
    """Why a trial ended as it did: the failure, the pruning, a note on its value."""
    if trial.state.name == "PRUNED" and trial.intermediate_values:
        return f"pruned at iteration {max(trial.intermediate_values)}"
    if trial.state.name == "FAIL":
        return trial.user_attrs.get("fail_reason", NO_HEARTBEAT)
    return trial.user_attrs.get("note", "")


def format_table(study: optuna.Study) -> str:
    """One row per trial: number, state (Optuna's name), metric, values, duration, note."""
    record = _record(study)
    names = sorted(record["distributions"])
    header = ["TRIAL", "STATE", record["metric"], *names, "DURATION", "NOTE"]
    rows = [header]
    for trial in study.trials:
        value = "-" if trial.value is None else f"{trial.value:.4g}"
        if trial.value is None and trial.intermediate_values:  # pruned: its last report
            last = trial.intermediate_values[max(trial.intermediate_values)]
            value = f"({last:.4g})"
        note = trial_note(trial)
        params = [format_value(trial.params[n]) if n in trial.params else "-" for n in names]
        rows.append([str(trial.number), trial.state.name, value, *params, _duration(trial),
                     note])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in rows]
    lines.append(best_text(study))
    return "\n".join(line.rstrip() for line in lines)


def best_text(study: optuna.Study) -> str:
    record = _record(study)
    try:
        best = study.best_trial
    except ValueError:
        return "best: no complete trial yet"
    params = ", ".join(f"{k}={format_value(v)}" for k, v in best.params.items())
    return (f"best: trial {best.number} {record['metric']}={best.value:.4g} "
            f"({study.direction.name.lower()}) with {params}")


def best_config(study: optuna.Study) -> Config:
    """The best trial's config, rendered as its trial was (data, fixed values, options)."""
    from cplugins.templates.rendering import render

    record = _record(study)
    try:
        best = study.best_trial
    except ValueError:
        raise TuneError(f"study {study.study_name!r} has no complete trial yet") from None
    space = space_of(study)
    return render(space.template, space.values_of(best.params), data=record["data"],
                  overrides=record["overrides"] or None)


def write_best_config(study: optuna.Study, path: str | os.PathLike) -> str:
    """Write the best trial's config as a plain mmengine config; returns the path."""
    from cplugins.templates.rendering import write_config

    return write_config(best_config(study), path)


def write_charts(study: optuna.Study, folder: str | os.PathLike) -> dict[str, str]:
    """PNG charts of ``CHARTS`` into ``folder``; returns ``{file: ''}`` written or
    ``{file: reason}`` for the ones a study cannot draw yet (e.g. importances need two
    complete trials with different values)."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as charts

    os.makedirs(folder, exist_ok=True)
    result = {}
    for name, function in CHARTS.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # optuna's ExperimentalWarning
                axes = getattr(charts, function)(study)
            figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
            figure.savefig(osp.join(folder, name), dpi=100, bbox_inches="tight")
            plt.close(figure)
            result[name] = ""
        except Exception as exc:  # a chart the study cannot draw: say why, draw the others
            result[name] = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return result
