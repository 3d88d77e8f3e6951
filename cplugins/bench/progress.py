"""Progress display of ``cplugins bench``: one redrawn line on a terminal, periodic lines
otherwise (logs, CI)."""
from __future__ import annotations

import sys
import time
from typing import TextIO


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m{seconds:02d}s"


class Progress:
    """Counts timed calls out of ``total`` and shows where the run is, with an ETA.

    Args:
        total: calls expected (warm-up and timed rounds of every workload and mode).
        stream: where to write (stderr by default).
        enabled: False shows nothing (``--quiet``).
        every_seconds: without a terminal, at most one progress line per this many seconds.
    """

    def __init__(self, total: int, stream: TextIO | None = None, enabled: bool = True,
                 every_seconds: float = 15.0) -> None:
        if total < 0:
            raise ValueError(f"total must be >= 0, got {total}")
        self.total = total
        self.done = 0
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.every_seconds = every_seconds
        self._start = time.perf_counter()
        self._last = 0.0
        self._width = 0
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def line(self, label: str) -> str:
        width = 24
        frac = self.done / self.total if self.total else 1.0
        bar = "#" * int(width * frac) + "." * (width - int(width * frac))
        elapsed = time.perf_counter() - self._start
        eta = elapsed / self.done * (self.total - self.done) if self.done else 0.0
        return (f"bench [{bar}] {100 * frac:5.1f}% {label}  elapsed {_duration(elapsed)} "
                f"eta {_duration(eta)}")

    def update(self, label: str, n: int = 1) -> None:
        self.done = min(self.total, self.done + n)
        if not self.enabled:
            return
        now = time.perf_counter()
        if self._tty:
            text = self.line(label)
            self.stream.write("\r" + text.ljust(self._width))
            self._width = len(text)
            self.stream.flush()
        elif now - self._last >= self.every_seconds:
            self._last = now
            self.stream.write(self.line(label) + "\n")
            self.stream.flush()

    def note(self, text: str) -> None:
        """A line that stays (a finished measurement, a skipped case)."""
        if not self.enabled:
            return
        if self._tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self._width = 0
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._tty and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0
