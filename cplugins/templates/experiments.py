"""Experiment ids: every training run of a rendered template records itself in its work dir.

``ExperimentRecordHook`` (:mod:`cplugins.templates.experiment_hook`, in every rendered config's
``custom_hooks``) writes ``WORK_DIR/TIMESTAMP/cplugins_experiment.json`` when training starts
(the run's id, template, hyperparameters) and adds the last checkpoint as they are saved.
``cplugins runs`` lists the runs under a folder (``work_dirs``, or ``CPLUGINS_RUNS_ROOT``); a
template's ``continue_from_eid=ID`` starts from that run's last checkpoint.

Light on purpose (standard library only): validation calls :func:`find_run`.
"""
from __future__ import annotations

import json
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Any

from cplugins.templates.model import TemplateError

RECORD_NAME = "cplugins_experiment.json"
ENV_RUNS_ROOT = "CPLUGINS_RUNS_ROOT"
DEFAULT_RUNS_ROOT = "work_dirs"
#: how deep under the root records are looked for (ROOT/NAME/TIMESTAMP/record: 3)
_MAX_DEPTH = 4


@dataclass(frozen=True)
class Run:
    """One recorded training run."""

    eid: str
    template: str
    work_dir: str
    started: str
    record: str
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    last_checkpoint: str | None = None

    @classmethod
    def read(cls, path: str) -> Run | None:
        try:
            with open(path) as f:
                data = json.load(f)
            return cls(eid=str(data["eid"]), template=str(data.get("template", "")),
                       work_dir=str(data.get("work_dir", "")),
                       started=str(data.get("started", "")), record=path,
                       hyperparameters=dict(data.get("hyperparameters") or {}),
                       last_checkpoint=data.get("last_checkpoint"))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # a half-written or foreign file is not a run


def runs_root(root: str | None = None) -> str:
    return root or os.environ.get(ENV_RUNS_ROOT) or DEFAULT_RUNS_ROOT


def find_runs(root: str | None = None) -> list[Run]:
    """Every run recorded under ``root``, oldest first."""
    top = osp.abspath(runs_root(root))
    found = []
    for folder, dirs, files in os.walk(top):
        depth = folder[len(top):].count(os.sep)
        if depth >= _MAX_DEPTH:
            dirs[:] = []
        if RECORD_NAME in files:
            run = Run.read(osp.join(folder, RECORD_NAME))
            if run is not None:
                found.append(run)
    return sorted(found, key=lambda r: (r.started, r.eid))


def find_run(eid: str, root: str | None = None) -> Run:
    """The run called ``eid``; :class:`TemplateError` naming the known ids otherwise."""
    runs = find_runs(root)
    for run in runs:
        if run.eid == eid:
            return run
    known = ", ".join(r.eid for r in runs[-5:]) or "none recorded"
    raise TemplateError(f"continue_from_eid={eid!r}: no run with this id under "
                        f"{runs_root(root)}/ (latest: {known}); allowed: '' (none) or the id "
                        f"of a recorded run (`cplugins runs`; {ENV_RUNS_ROOT} sets the folder)")


def checkpoint_of(eid: str, root: str | None = None) -> str:
    """The last checkpoint that run ``eid`` saved."""
    run = find_run(eid, root)
    if not run.last_checkpoint or not osp.isfile(run.last_checkpoint):
        raise TemplateError(f"continue_from_eid={eid!r}: the run in {run.work_dir} saved no "
                            "checkpoint (yet); allowed: '' (none) or the id of a run with a "
                            "checkpoint (`cplugins runs`)")
    return run.last_checkpoint


def format_runs(runs: list[Run]) -> str:
    """One row per run: id, template, start, last checkpoint."""
    rows = [("EID", "TEMPLATE", "STARTED", "LAST CHECKPOINT")]
    rows += [(r.eid, r.template, r.started, r.last_checkpoint or "-") for r in runs]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row[:3], widths)) + "  " + row[3]
                     for row in rows)
