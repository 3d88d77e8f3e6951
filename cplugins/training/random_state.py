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

With several processes only rank 0 saves a checkpoint: ranks restore rank 0's states.
"""
from __future__ import annotations

import logging
import random

import numpy as np
import torch
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


class RandomStateHook(Hook):
    """Make a resumed run bit-identical to an uninterrupted one (see the module docstring).

    Use: ``custom_hooks=[dict(type='RandomStateHook')]`` (``tools/train.py`` adds it).
    """

    priority = "VERY_HIGH"
    KEY = "random_state"

    def __init__(self):
        self._resumed_state: dict | None = None
        self._before_validation: dict | None = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[self.KEY] = capture()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not getattr(runner, "_resume", False):
            return  # load_from (fine-tuning) starts a new run: its own random stream
        self._resumed_state = checkpoint.get(self.KEY)
        if self._resumed_state is None:
            print_log("RandomStateHook: the checkpoint holds no random state (saved without "
                      "this hook): the resumed run will not repeat the interrupted one exactly",
                      logger="current", level=logging.WARNING)

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
