"""Save every random state training consumes into checkpoints; restore it on resume.

Without it a resumed run draws other random numbers than the uninterrupted one (mmdet's
proposal samplers use torch's global generator, transforms numpy's and Python's), so its
weights differ. What is covered, and how:

- torch (CPU and every CUDA device), numpy and Python global generators: saved in the
  checkpoint (``checkpoint['random_state']``, plain tensors and ints: weights-only loadable);
- data order, sampler state and per-worker seeds: mmengine's ``IterBasedTrainLoop`` replays
  the batches already trained on resume (same sampler seeds, same worker seeds from
  ``worker_init_fn``), which re-creates the workers' streams; the main process's states are
  restored right *after* that replay, since the replay itself draws from them;
- validation: runs between two training iterations and draws random numbers (dataloader
  seeds), but not after a resume; this hook hands it a copy, so the training stream is the
  same whether, when and how often validation runs.

With several processes every rank has its own stream (``tools/train.py`` seeds rank ``r``
with ``seed + r``): the checkpoint, written by rank 0, holds every rank's states
(``checkpoint['random_state'] = {'world_size': W, 'ranks': [state_0, ...]}``, gathered with
``all_gather_object`` when every rank calls ``runner.save_checkpoint``, as mmengine's
``CheckpointHook`` does) and each rank restores its own. Resuming with another number of
processes cannot repeat the interrupted run (the data is sharded differently): the hook warns
and restores nothing, so each rank keeps the distinct stream it was seeded with. Checkpoints
of earlier versions (one unlabelled state) are restored in single-process runs only.
"""
from __future__ import annotations

import logging
import random

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log


def capture() -> dict:
    """Every global random state, as tensors, ints, floats and strings only."""
    name, keys, position, has_gauss, cached = np.random.get_state()
    version, python_state, gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)),
                  "position": int(position), "has_gauss": int(has_gauss),
                  "cached_gaussian": float(cached)},
        "python": {"version": version, "state": list(python_state), "gauss": gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore(state: dict) -> None:
    """Set the global random states ``capture`` returned."""
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["name"], numpy_state["keys"].numpy().astype(np.uint32),
                         numpy_state["position"], numpy_state["has_gauss"],
                         numpy_state["cached_gaussian"]))
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(python_state["state"]),
                     python_state["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class _RestoreAfter:
    """Iterator wrapper: after ``count`` items, restore ``state`` and unwrap itself."""

    def __init__(self, loop, count: int, state: dict):
        self._loop, self._inner = loop, loop.dataloader_iterator
        self._left, self._state = count, state

    def __iter__(self):
        return self

    def __next__(self):
        item = next(self._inner)
        self._left -= 1
        if self._left == 0:
            restore(self._state)
            self._loop.dataloader_iterator = self._inner
        return item


def own_state(saved: dict | None) -> dict | None:
    """This rank's state in a checkpoint's ``random_state`` entry; None (with a warning)
    when there is none or it was saved by another number of processes."""
    world, rank = get_world_size(), get_rank()
    if saved is None:
        print_log("RandomStateHook: the checkpoint holds no random state (saved without "
                  "this hook): the resumed run will not repeat the interrupted one exactly",
                  logger="current", level=logging.WARNING)
        return None
    saved_world = saved.get("world_size", 1) if "ranks" in saved else 1
    if saved_world != world:
        print_log(f"RandomStateHook: the checkpoint was saved by {saved_world} process(es), "
                  f"this run has {world}: random states not restored (each rank keeps the "
                  "stream it was seeded with); the resumed run will not repeat the "
                  "interrupted one exactly", logger="current", level=logging.WARNING)
        return None
    return saved["ranks"][rank] if "ranks" in saved else saved


class RandomStateHook(Hook):
    """Make a resumed run bit-identical to an uninterrupted one (see the module docstring).

    Use: ``custom_hooks=[dict(type='RandomStateHook')]`` (``tools/train.py`` adds it).
    """

    priority = "VERY_HIGH"
    KEY = "random_state"

    def __init__(self):
        self._resumed_state: dict | None = None
        self._gathered: list[dict] | None = None
        self._before_validation: dict | None = None

    def before_run(self, runner) -> None:
        if get_world_size() > 1:
            self._gather_when_saving(runner)

    def _gather_when_saving(self, runner) -> None:
        """``Runner.save_checkpoint`` runs on rank 0 only (its hooks too), but every rank
        calls it (CheckpointHook runs everywhere): gather all ranks' states right there."""
        save_checkpoint = runner.save_checkpoint

        def gather_then_save(*args, **kwargs):
            self._gathered = all_gather_object(capture())
            try:
                return save_checkpoint(*args, **kwargs)
            finally:
                self._gathered = None

        runner.save_checkpoint = gather_then_save

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        states = self._gathered or [capture()]
        checkpoint[self.KEY] = {"world_size": len(states), "ranks": states}

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not getattr(runner, "_resume", False):
            return  # load_from (fine-tuning) starts a new run: its own random stream
        self._resumed_state = own_state(checkpoint.get(self.KEY))

    def before_train_epoch(self, runner) -> None:
        state, self._resumed_state = self._resumed_state, None
        if state is None:
            return
        loop = runner.train_loop
        iterator = getattr(loop, "dataloader_iterator", None)
        if iterator is not None and loop.iter > 0:
            # IterBasedTrainLoop replays loop.iter batches after this hook: restore after them
            loop.dataloader_iterator = _RestoreAfter(loop, loop.iter, state)
        else:  # epoch-based: the next draws are this epoch's, as in the uninterrupted run
            restore(state)

    def before_val(self, runner) -> None:
        self._before_validation = capture()

    def after_val(self, runner) -> None:
        if self._before_validation is not None:
            restore(self._before_validation)
            self._before_validation = None
