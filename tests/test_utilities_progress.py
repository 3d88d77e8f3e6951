"""The one progress display (``cplugins.progress``, on rich): readable lines off a terminal, a
live display on one."""
from __future__ import annotations

import io
import os
import re

from cplugins.progress import Progress

CONTROL = re.compile(r"[\r\x1b]")


def test_off_a_terminal_it_writes_plain_throttled_lines_and_notes():
    stream = io.StringIO()
    progress = Progress(6, stream=stream, every_seconds=3600)
    for i in range(6):
        progress.update(f"case round {i + 1}/6 [x]")
        if i == 2:
            progress.note("case fwd: A 1.2 ms vs B 1.0 ms  ratio 1.2 [1.1, 1.3]")
    progress.close()
    lines = stream.getvalue().splitlines()
    assert not CONTROL.search(stream.getvalue())
    assert len(lines) == 3  # the first step, the note, the last step (the rest throttled)
    assert lines[0].startswith("bench [") and "1/6" in lines[0] and "round 1/6 [x]" in lines[0]
    assert lines[1] == "case fwd: A 1.2 ms vs B 1.0 ms  ratio 1.2 [1.1, 1.3]"  # no markup
    assert "6/6" in lines[2] and "100%" in lines[2] and "eta 0:00:00" in lines[2]


def test_bars_resume_restart_and_print_every_percent():
    stream = io.StringIO()
    progress = Progress(stream=stream, every_seconds=3600, every_percent=50, label="train")
    progress.start_bar("train", 4, done=1)  # resumed at iteration 1
    for loss in (0.5, 0.4, 0.3):
        progress.update(f"loss {loss}", bar="train")
    for _ in range(2):
        progress.start_bar("val", 2)  # each validation starts its bar again
        progress.update(bar="val")
        progress.update(bar="val")
    progress.close()
    lines = stream.getvalue().splitlines()
    assert [line.split("]")[1].split()[0] for line in lines] == [
        "2/4", "4/4", "1/2", "2/2", "1/2", "2/2"]  # 3/4 is in the same 50% step as 2/4
    assert "loss 0.3" in lines[1]


def test_quiet_shows_nothing():
    stream = io.StringIO()
    progress = Progress(3, stream=stream, enabled=False)
    progress.update("x", 3)
    progress.note("hidden")
    progress.close()
    assert stream.getvalue() == ""


def test_on_a_terminal_it_redraws_in_place():
    leader, follower = os.openpty()
    with open(follower, "w", closefd=True) as terminal:
        progress = Progress(2, stream=terminal)
        assert progress.live
        progress.update("first")
        progress.note("a note")
        progress.update("second")
        progress.close()
    written = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the follower end is closed: all read
            break
        if not chunk:
            break
        written += chunk
    os.close(leader)
    text = written.decode()
    assert "\x1b[" in text and "a note" in text and "2/2" in text
