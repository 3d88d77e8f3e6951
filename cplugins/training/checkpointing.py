"""Atomic checkpoints: a checkpoint file either exists complete or not at all.

mmengine's ``CheckpointHook`` deletes the oldest checkpoint (``max_keep_ckpts``) *before*
writing the new one, writes in place and then points ``last_checkpoint`` at it: a kill or a
full disk during the write leaves a truncated file that ``last_checkpoint`` names, and the
good one is already gone. :class:`AtomicCheckpointHook` writes to a hidden temporary file in
the same folder, fsyncs it, renames it into place, then updates ``last_checkpoint`` (also by
rename) and only then deletes the checkpoints ``max_keep_ckpts`` retires. It never writes a
checkpoint holding a NaN or infinite tensor.
"""
from __future__ import annotations

import os
import os.path as osp
from collections.abc import Iterable

import torch
from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.model import is_model_wrapper

from cplugins.training.errors import CheckpointWriteError, NonFiniteError

LAST_CHECKPOINT = "last_checkpoint"


def non_finite_tensors(named_tensors: Iterable[tuple[str, torch.Tensor]]) -> list[str]:
    """Names of the floating-point tensors that hold a NaN or an infinity."""
    return [name for name, tensor in named_tensors
            if torch.is_tensor(tensor) and tensor.is_floating_point()
            and not bool(torch.isfinite(tensor).all())]


def last_good_checkpoint(work_dir: str) -> str | None:
    """The checkpoint ``work_dir/last_checkpoint`` names, if that file exists."""
    path = osp.join(work_dir, LAST_CHECKPOINT)
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return f.read().strip() or None


def _fsync_dir(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(temporary: str, final: str) -> None:
    """Make ``temporary`` (complete, same folder) appear as ``final`` in one step."""
    with open(temporary, "rb") as f:
        os.fsync(f.fileno())
    os.replace(temporary, final)
    _fsync_dir(osp.dirname(osp.abspath(final)))


def write_text_atomic(path: str, text: str) -> None:
    temporary = osp.join(osp.dirname(path), f".{osp.basename(path)}.tmp")
    with open(temporary, "w") as f:
        f.write(text)
    publish(temporary, path)


def _unwrap(model):
    return model.module if is_model_wrapper(model) else model


class AtomicCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` with atomic, finite-only writes (same arguments).

    ``tools/train.py`` uses it in place of ``CheckpointHook``; in a config:
    ``default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook', interval=5))``.
    Non-local backends (``backend_args``) fall back to mmengine's behaviour.
    """

    def _save_checkpoint_with_step(self, runner, step, meta):
        if not isinstance(self.file_backend, LocalBackend):
            return super()._save_checkpoint_with_step(runner, step, meta)
        ckpt_filename = self.filename_tmpl.format(step)
        final = osp.join(self.out_dir, ckpt_filename)
        bad = non_finite_tensors(_unwrap(runner.model).state_dict().items())
        if bad:
            raise NonFiniteError(
                f"not saving {final}: {len(bad)} model tensors hold NaN or inf (first: "
                f"{', '.join(bad[:3])}); last good checkpoint: "
                f"{last_good_checkpoint(runner.work_dir) or 'none'}")

        retired = None
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids
                                             and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                retired = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info("keep_ckpt_ids", list(self.keep_ckpt_ids))
        self.last_ckpt = final
        runner.message_hub.update_info("last_ckpt", final)
        if getattr(runner.cfg, "filename", None):
            meta = dict(meta, config_name=osp.basename(runner.cfg.filename))

        temporary_name = f".{ckpt_filename}.tmp"
        temporary = osp.join(self.out_dir, temporary_name)
        try:
            runner.save_checkpoint(self.out_dir, temporary_name, self.file_client_args,
                                   save_optimizer=self.save_optimizer,
                                   save_param_scheduler=self.save_param_scheduler,
                                   meta=meta, by_epoch=self.by_epoch,
                                   backend_args=self.backend_args, **self.args)
            if not is_main_process():
                return
            publish(temporary, final)
            write_text_atomic(osp.join(runner.work_dir, LAST_CHECKPOINT), final)
        except BaseException as exc:  # a partial temporary file never stays behind
            if osp.exists(temporary):
                os.remove(temporary)
            if not isinstance(exc, OSError):
                raise
            raise CheckpointWriteError(
                f"could not write checkpoint {final}: {exc.strerror or exc}; nothing was "
                f"replaced, last good checkpoint: "
                f"{last_good_checkpoint(runner.work_dir) or 'none'}") from exc
        if retired is not None and retired != step:
            old = osp.join(self.out_dir, self.filename_tmpl.format(retired))
            if osp.isfile(old):
                os.remove(old)
