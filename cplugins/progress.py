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
    """One line showing iteration, loss and ETA; redrawn in place on a terminal, otherwise
    (logs, CI) printed every ``every_percent`` percent or ``every_seconds``, whichever first.

    Use: ``custom_hooks=[dict(type='ProgressHook')]``.
    """

    priority = "VERY_LOW"

    def __init__(self, every_percent: int = 10, every_seconds: float = 20.0, stream=None):
        if not 1 <= every_percent <= 100:
            raise ValueError(f"every_percent must be in 1..100, got {every_percent}")
        if every_seconds <= 0:
            raise ValueError(f"every_seconds must be > 0, got {every_seconds}")
        self.every_percent = every_percent
        self.every_seconds = every_seconds
        self.stream = stream or sys.stderr
        self._start = 0.0
        self._last_percent = -1
        self._last_time = 0.0

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

    def after_val_epoch(self, runner, metrics=None) -> None:
        if metrics:
            shown = ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                              for k, v in metrics.items())
            self.stream.write(f"val   metrics at iter {runner.iter}: {shown}\n")
            self.stream.flush()

    def _show(self, line: str, done: int, total: int, force_newline_at_end: bool = False) -> None:
        if self.stream.isatty():
            end = "\n" if done == total else ""
            self.stream.write("\r" + line + end)
        else:
            step = 100 * done // max(total, 1) // self.every_percent
            now = time.perf_counter()
            if (done != total and step == self._last_percent
                    and now - self._last_time < self.every_seconds):
                return
            self._last_percent, self._last_time = step, now
            self.stream.write(line + "\n")
            if done == total:
                self._last_percent = -1
        self.stream.flush()
