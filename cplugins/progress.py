"""A progress display for training and validation (an mmengine hook)."""
from __future__ import annotations

import sys
import time

from mmengine.hooks import Hook


def _bar(done: int, total: int, width: int = 28) -> str:
    filled = int(width * done / max(total, 1))
    return "#" * filled + "." * (width - filled)


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s"


class ProgressHook(Hook):
    """One line showing iteration, loss and ETA; redrawn in place on a terminal,
    printed every ``every_percent`` percent otherwise (logs, CI).

    Use: ``custom_hooks=[dict(type='ProgressHook')]``.
    """

    priority = "VERY_LOW"

    def __init__(self, every_percent: int = 10, stream=None):
        if not 1 <= every_percent <= 100:
            raise ValueError(f"every_percent must be in 1..100, got {every_percent}")
        self.every_percent = every_percent
        self.stream = stream or sys.stderr
        self._start = 0.0
        self._last_percent = -1

    def before_train(self, runner) -> None:
        self._start = time.perf_counter()
        self._last_percent = -1

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        done, total = runner.iter + 1, runner.max_iters
        loss = ""
        if isinstance(outputs, dict) and "loss" in outputs:
            loss = f" loss {outputs['loss'].item():.3f}"
        elapsed = time.perf_counter() - self._start
        eta = elapsed / done * (total - done)
        line = (f"train [{_bar(done, total)}] {done}/{total}{loss} "
                f"elapsed {_duration(elapsed)} eta {_duration(eta)}")
        self._show(line, done, total)

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        total = len(runner.val_dataloader)
        self._show(f"val   [{_bar(batch_idx + 1, total)}] {batch_idx + 1}/{total}",
                   batch_idx + 1, total, force_newline_at_end=True)

    def _show(self, line: str, done: int, total: int, force_newline_at_end: bool = False) -> None:
        if self.stream.isatty():
            end = "\n" if done == total else ""
            self.stream.write("\r" + line + end)
        else:
            percent = 100 * done // max(total, 1)
            if done != total and percent // self.every_percent == self._last_percent:
                return
            self._last_percent = percent // self.every_percent
            self.stream.write(line + "\n")
            if done == total:
                self._last_percent = -1
        self.stream.flush()
