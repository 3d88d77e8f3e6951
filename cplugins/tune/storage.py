"""Where a study lives: an Optuna storage URL, opened with a heartbeat.

* ``sqlite:///PATH`` (the default, ``WORK_DIR/tune.db``: embedded, nothing to start) or any
  SQLAlchemy URL (``postgresql://...``, ``mysql://...``) -> ``RDBStorage``;
* ``journal:PATH`` -> ``JournalStorage`` on a ``JournalFileBackend`` (one append-only file,
  e.g. on a file system several machines share).

Every trial sends a heartbeat each ``heartbeat`` seconds; a RUNNING trial whose heartbeat is
older than twice that (its process was killed), or that has none and started longer ago than
that (killed before its first), is marked FAIL when any process of the study starts its next
trial.
"""
from __future__ import annotations

import os
import os.path as osp
import time
from typing import TYPE_CHECKING

from cplugins.tune.space import TuneError

if TYPE_CHECKING:
    from optuna.storages import BaseStorage

JOURNAL = "journal:"
#: the system attribute holding a journal trial's last heartbeat (seconds since the epoch)
HEARTBEAT_ATTR = "cplugins_heartbeat"

#: the study user attribute that records what a study searches (compared when it is reused)
RECORD_ATTR = "cplugins"


def default_storage(work_dir: str) -> str:
    """``sqlite:///<work_dir>/tune.db`` (absolute)."""
    return f"sqlite:///{osp.abspath(osp.join(work_dir, 'tune.db'))}"


def open_storage(url: str, heartbeat: int = 60) -> BaseStorage:
    """The storage at ``url``, with heartbeats every ``heartbeat`` seconds.

    Raises:
        TuneError: the URL cannot be opened (bad scheme, missing driver, unreachable
            server, a folder that does not exist...), in one line.
    """
    if heartbeat < 1:
        raise TuneError(f"--heartbeat {heartbeat}: give a whole number of seconds >= 1")
    import warnings

    from optuna.exceptions import ExperimentalWarning

    try:
        warnings.filterwarnings("ignore", category=ExperimentalWarning)  # heartbeat: stable
        if url.startswith(JOURNAL):
            return _journal(url[len(JOURNAL):], heartbeat)
        engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite:") else {}
        if url.startswith("sqlite:///"):
            folder = osp.dirname(url[len("sqlite:///"):])
            if folder and not osp.isdir(folder):
                raise TuneError(f"--storage {url}: folder {folder} does not exist")
        return _heartbeat_rdb_class()(url, engine_kwargs=engine, heartbeat_interval=heartbeat,
                                      grace_period=2 * heartbeat)
    except TuneError:
        raise
    except Exception as exc:  # sqlalchemy / driver / OS errors: one line, no traceback
        reason = (str(exc).strip().splitlines() or [""])[0]
        raise TuneError(f"--storage {url}: cannot open it: {type(exc).__name__}: {reason}; "
                        "allowed: sqlite:///FILE, an SQLAlchemy database URL, or "
                        "journal:FILE") from None


def _heartbeat_rdb_class():
    """``RDBStorage`` that also calls stale a RUNNING trial with no heartbeat at all (its
    process was killed before the first one) once it started longer ago than the grace
    period: Optuna skips such a trial, which then stayed RUNNING and counted for ever."""
    from datetime import datetime, timedelta

    from optuna.storages import RDBStorage
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session
    from optuna.trial import TrialState
    from sqlalchemy import orm

    class HeartbeatRDBStorage(RDBStorage):
        def _get_stale_trial_ids(self, study_id: int) -> list[int]:
            stale = super()._get_stale_trial_ids(study_id)
            # datetime_start is Optuna's datetime.now() (local, naive): compare with the same
            started_before = datetime.now() - timedelta(seconds=self.grace_period)
            with _create_scoped_session(self.scoped_session) as session:
                running = (session.query(models.TrialModel)
                           .options(orm.selectinload(models.TrialModel.heartbeats))
                           .filter(models.TrialModel.state == TrialState.RUNNING)
                           .filter(models.TrialModel.study_id == study_id).all())
                stale += [t.trial_id for t in running if not t.heartbeats
                          and t.datetime_start is not None
                          and t.datetime_start < started_before]
            return stale

    return HeartbeatRDBStorage


def _journal(path: str, heartbeat: int) -> BaseStorage:
    from optuna.storages.journal import JournalFileBackend

    path = path[2:] if path.startswith("//") else path  # journal:///abs/file -> /abs/file
    if not path:
        raise TuneError("--storage journal:: give the journal file, e.g. journal:tune.log")
    folder = osp.dirname(osp.abspath(path))
    if not osp.isdir(folder):
        raise TuneError(f"--storage journal:{path}: folder {folder} does not exist")
    if osp.isdir(path):
        raise TuneError(f"--storage journal:{path}: a folder; give the journal file")
    storage_class = _heartbeat_journal_class()
    return storage_class(JournalFileBackend(os.fspath(path)), heartbeat)


def _heartbeat_journal_class():
    """``JournalStorage`` with Optuna's heartbeat protocol (which it lacks): the heartbeat is a
    trial system attribute, so ``fail_stale_trials`` works as on an RDB storage."""
    from optuna.storages import JournalStorage
    from optuna.storages._heartbeat import BaseHeartbeat
    from optuna.trial import TrialState

    class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
        def __init__(self, backend, heartbeat: int) -> None:
            super().__init__(backend)
            self._heartbeat = heartbeat

        def record_heartbeat(self, trial_id: int) -> None:
            try:
                self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())
            except Exception:  # the trial finished meanwhile: nothing to keep alive
                pass

        def _get_stale_trial_ids(self, study_id: int) -> list[int]:
            now, grace = time.time(), 2 * self._heartbeat
            stale = []
            for trial in self.get_all_trials(study_id, deepcopy=False,
                                             states=(TrialState.RUNNING,)):
                beat = trial.system_attrs.get(HEARTBEAT_ATTR)
                if beat is None and trial.datetime_start is not None:
                    beat = trial.datetime_start.timestamp()
                if beat is not None and now - beat > grace:
                    stale.append(trial._trial_id)
            return stale

        def get_heartbeat_interval(self) -> int | None:
            return self._heartbeat

        def get_heartbeat_stale_trial_callback(self):
            return None

    return HeartbeatJournalStorage
