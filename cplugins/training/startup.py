"""What ``tools/train.py`` and ``tools/test.py`` check before and right after building the
runner: which checkpoint to resume, whether it is readable, whether it fits the model."""
from __future__ import annotations

import sys

from cplugins.training.checkpointing import last_good_checkpoint
from cplugins.training.errors import CheckpointFileError, CheckpointMismatchError
from cplugins.training.loading import (
    compare_with_model,
    is_local_path,
    mismatch_summary,
    read_checkpoint,
)


def resume_target(resume: str | None, work_dir: str, or_start: bool = False) -> str | None:
    """The checkpoint to resume: ``resume`` itself, or for ``'auto'`` the one
    ``work_dir/last_checkpoint`` names. Nothing there: :class:`CheckpointFileError`, unless
    ``or_start`` (then None: train from scratch)."""
    if resume is None:
        return None
    if resume != "auto":
        return resume
    found = last_good_checkpoint(work_dir)  # mmengine's finder would log a line first
    if found is None and not or_start:
        raise CheckpointFileError(
            f"--resume: nothing to resume in {work_dir} (no last_checkpoint file); drop "
            "--resume to start from scratch, give --resume CKPT, or use --resume-or-start")
    return found


def read_local_checkpoint(path: str | None) -> dict | None:
    """``read_checkpoint(path)`` for a local file; None for no path or a URL (downloaded
    and checked by mmengine later)."""
    if not path or not is_local_path(path):
        return None
    return read_checkpoint(path)


def check_fits_model(model, checkpoint: dict | None, path: str, strict: bool) -> None:
    """Raise :class:`CheckpointMismatchError` (strict) or print the summary (not strict) when
    ``checkpoint``'s keys or shapes differ from ``model``'s."""
    if checkpoint is None:
        return
    comparison = compare_with_model(model, checkpoint)
    if comparison.exact:
        return
    summary = mismatch_summary(path, comparison, checkpoint)
    if strict:
        raise CheckpointMismatchError(summary)
    print(f"warning: {summary}\n  loading the {comparison.matched} matching tensors only",
          file=sys.stderr)
