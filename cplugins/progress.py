"""The one progress display of cplugins, on ``rich.progress``: training and validation (the
mmengine hook :class:`ProgressHook`) and ``cplugins bench`` (:class:`Progress`).

On a terminal the bars are redrawn in place and notes print above them. Elsewhere (logs, CI)
nothing is redrawn and no control characters are written: each bar prints as one plain line
(``train [━━━━      ] 40/100 40% loss 0.412 elapsed 0:01:02 eta 0:01:33``) at its first step,
then at most every ``every_seconds`` (or on reaching the next ``every_percent`` percent), and at
its last step.
"""
from __future__ import annotations

import sys
import time
from typing import TextIO

from mmengine.hooks import Hook
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as _RichProgress

#: width of the plain lines written to a file or pipe (rich would wrap them at 80)
_LOG_WIDTH = 240


class Progress:
    """Named bars (``bar`` steps done out of ``total``, with an info text and an ETA) and notes.

    Args:
        total: steps of the first bar, named ``label`` (0: no bar yet; add bars with
            :meth:`start_bar`).
        label: the first bar's name, shown in front of it.
        stream: where to write (stderr by default); a terminal gets the live display.
        enabled: False shows nothing, notes included (``--quiet``).
        every_seconds: off a terminal, at most one line per bar per this many seconds.
        every_percent: off a terminal, also a line whenever a bar crosses a multiple of this
            many percent (None: by time only).
    """

    def __init__(self, total: int = 0, stream: TextIO | None = None, enabled: bool = True,
                 every_seconds: float = 15.0, every_percent: int | None = None,
                 label: str = "bench") -> None:
        if every_seconds <= 0:
            raise ValueError(f"every_seconds must be > 0, got {every_seconds}")
        if every_percent is not None and not 1 <= every_percent <= 100:
            raise ValueError(f"every_percent must be in 1..100, got {every_percent}")
        self.enabled = enabled
        self.every_seconds = every_seconds
        self.every_percent = every_percent
        self.console = Console(file=stream or sys.stderr, highlight=False, emoji=False)
        self.live = self.console.is_terminal and not self.console.is_dumb_terminal
        if not self.live:
            self.console.width = _LOG_WIDTH
        self._rich = _RichProgress(
            TextColumn("{task.description} [", markup=False),
            BarColumn(bar_width=24), TextColumn("]"), MofNCompleteColumn(), TaskProgressColumn(),
            TextColumn("{task.fields[info]}", markup=False), TextColumn("elapsed"),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
            console=self.console, disable=not (enabled and self.live), transient=False)
        self._bars: dict[str, TaskID] = {}
        self._last_line: dict[str, tuple[float, int]] = {}  # bar: (time, percent step)
        self._started = False
        self._first = label
        if total:
            self.start_bar(label, total)

    def start_bar(self, label: str, total: int, done: int = 0) -> None:
        """Add bar ``label`` with ``total`` steps, ``done`` of them already (a resumed run), or
        restart it there (a new validation)."""
        if not 0 <= done <= total:
            raise ValueError(f"need 0 <= done <= total, got done={done}, total={total}")
        if label in self._bars:
            self._rich.reset(self._bars[label], total=total, completed=done, info="")
        else:
            self._bars[label] = self._rich.add_task(label, total=total, completed=done,
                                                    info="")
        self._last_line.pop(label, None)
        if not self._started:
            self._rich.start()  # the live display (on a terminal only)
            self._started = True

    def update(self, info: str = "", n: int = 1, bar: str | None = None) -> None:
        """``n`` more steps done on ``bar`` (the first bar by default); ``info`` says where."""
        label = bar or self._first
        task_id = self._bars[label]
        task = self._task(label)
        self._rich.update(task_id, completed=min(task.total, task.completed + n), info=info)
        if self.enabled and not self.live:
            self._log_line(label)

    def note(self, text: str) -> None:
        """A line that stays (a finished measurement, a skipped case, metrics)."""
        if self.enabled:
            self.console.print(text, markup=False, soft_wrap=True)

    def close(self) -> None:
        """Stop the live display (its last frame stays on the terminal)."""
        if self._started:
            self._rich.stop()
            self._started = False

    def _task(self, label: str):
        return self._rich.tasks[self._bars[label]]

    def _log_line(self, label: str) -> None:
        task = self._task(label)
        now = time.monotonic()
        step = (int(task.percentage) // self.every_percent) if self.every_percent else 0
        last = self._last_line.get(label)
        if (last is not None and not task.finished and now - last[0] < self.every_seconds
                and step == last[1]):
            return
        self._last_line[label] = (now, step)
        self.console.print(self._rich.make_tasks_table([task]), soft_wrap=True)


class ProgressHook(Hook):
    """Training and validation progress: iterations, loss, elapsed time and ETA, live on a
    terminal, otherwise (logs, CI) a line every ``every_percent`` percent or ``every_seconds``,
    whichever comes first.

    Use: ``custom_hooks=[dict(type='ProgressHook')]``.
    """

    priority = "VERY_LOW"

    def __init__(self, every_percent: int = 10, every_seconds: float = 20.0,
                 stream: TextIO | None = None) -> None:
        if not 1 <= every_percent <= 100:
            raise ValueError(f"every_percent must be in 1..100, got {every_percent}")
        if every_seconds <= 0:
            raise ValueError(f"every_seconds must be > 0, got {every_seconds}")
        self.every_percent = every_percent
        self.every_seconds = every_seconds
        self.stream = stream
        self._display: Progress | None = None

    @property
    def display(self) -> Progress:
        if self._display is None:
            self._display = Progress(stream=self.stream, every_seconds=self.every_seconds,
                                     every_percent=self.every_percent, label="train")
        return self._display

    def before_train(self, runner) -> None:
        self.display.start_bar("train", runner.max_iters, done=runner.iter)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        loss = ""
        if isinstance(outputs, dict) and "loss" in outputs:
            loss = f"loss {outputs['loss'].item():.3f}"
        self.display.update(loss, bar="train")

    def before_val(self, runner) -> None:
        self.display.start_bar("val", len(runner.val_dataloader))

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.display.update(bar="val")

    def after_val_epoch(self, runner, metrics=None) -> None:
        if metrics:
            shown = ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                              for k, v in metrics.items())
            self.display.note(f"val   metrics at iter {runner.iter}: {shown}")

    def after_run(self, runner) -> None:
        if self._display is not None:
            self._display.close()
            self._display = None
