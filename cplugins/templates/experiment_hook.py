"""``ExperimentRecordHook``: gives a training run its experiment id and records it.

Writes ``WORK_DIR/TIMESTAMP/cplugins_experiment.json`` (see :mod:`cplugins.templates.experiments`)
when training starts and keeps its ``last_checkpoint`` current as checkpoints are saved (it runs
after mmengine's ``CheckpointHook``, which writes ``WORK_DIR/last_checkpoint``).
"""
from __future__ import annotations

import json
import os
import os.path as osp
import secrets
import time

from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from cplugins.templates.experiments import RECORD_NAME


class ExperimentRecordHook(Hook):
    """Record the run (id, template, hyperparameters, last checkpoint) in its log dir."""

    priority = "LOWEST"

    def __init__(self) -> None:
        self.path: str | None = None
        self.record: dict = {}

    def before_train(self, runner) -> None:
        if not is_main_process():
            return
        template = runner.cfg.get("template") or {}
        self.record = dict(
            eid=f"{runner.timestamp}-{secrets.token_hex(2)}",
            template=template.get("name", osp.basename(runner.cfg.filename or "")),
            hyperparameters=dict(template.get("hyperparameters") or {}),
            work_dir=osp.abspath(runner.work_dir),
            started=time.strftime("%Y-%m-%d %H:%M:%S"),
            last_checkpoint=None)
        self.path = osp.join(runner.log_dir, RECORD_NAME)
        self._write()
        runner.logger.info(f"experiment id {self.record['eid']} (recorded in {self.path})")

    def _write(self) -> None:
        tmp = f"{self.path}.tmp"
        with open(tmp, "w") as f:
            json.dump(self.record, f, indent=2, default=str)
        os.replace(tmp, self.path)

    def _update_checkpoint(self, runner) -> None:
        if self.path is None:
            return
        marker = osp.join(runner.work_dir, "last_checkpoint")
        if not osp.isfile(marker):
            return
        with open(marker) as f:
            checkpoint = f.read().strip()
        if checkpoint and checkpoint != self.record.get("last_checkpoint"):
            self.record["last_checkpoint"] = osp.abspath(checkpoint)
            self._write()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._update_checkpoint(runner)

    def after_train_epoch(self, runner) -> None:
        self._update_checkpoint(runner)

    def after_train(self, runner) -> None:
        self._update_checkpoint(runner)
