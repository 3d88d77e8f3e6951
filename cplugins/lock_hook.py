"""``PluginLockHook``: records the plugin lock of a training, checks it when loading."""
from __future__ import annotations

import json
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from cplugins.lock import LOCK_FILE, META_KEY, lock_problems, plugin_lock


class PluginLockHook(Hook):
    """Write ``cplugins-lock.json`` to the work dir when training starts, put the lock into
    every checkpoint's ``meta['cplugins_lock']``, and warn when a loaded checkpoint (``load_from``,
    ``resume``) was trained with plugin versions other than the installed ones."""

    priority = "VERY_LOW"

    def __init__(self) -> None:
        self.lock: list[dict] | None = None

    def _lock(self, runner) -> list[dict]:
        if self.lock is None:
            self.lock = plugin_lock(runner.cfg)
        return self.lock

    def before_train(self, runner) -> None:
        lock = self._lock(runner)
        if is_main_process():
            with open(osp.join(runner.work_dir, LOCK_FILE), "w") as f:
                json.dump(lock, f, indent=2)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.setdefault("meta", {})[META_KEY] = self._lock(runner)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        lock = (checkpoint.get("meta") or {}).get(META_KEY) or []
        for problem in lock_problems(lock):
            runner.logger.warning(f"cplugins: {problem}")
