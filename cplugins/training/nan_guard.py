"""Stop (or skip the step) on a NaN/inf loss or gradient instead of training on garbage."""
from __future__ import annotations

import logging
import math

import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.optim import OptimWrapper, OptimWrapperDict

from cplugins.training.checkpointing import last_good_checkpoint
from cplugins.training.errors import EmptyValidationError, NonFiniteError

ACTIONS = ("stop", "skip")


def gradient_norm(parameters) -> float:
    """The L2 norm of all gradients together (NaN or inf when any gradient is)."""
    norms = [p.grad.detach().float().norm() for p in parameters if p.grad is not None]
    if not norms:
        return 0.0
    return float(torch.stack(norms).norm())


def _optim_wrappers(optim_wrapper) -> list[OptimWrapper]:
    if isinstance(optim_wrapper, OptimWrapperDict):
        return list(optim_wrapper.optim_wrappers.values())
    return [optim_wrapper]


class NanGuardHook(Hook):
    """Check every training step's loss terms and gradient norm.

    On a non-finite value the optimizer step is not taken (weights stay finite). Then
    ``action='stop'`` ends training with :class:`NonFiniteError` naming the iteration, the
    non-finite loss terms and the last good checkpoint (its priority runs it before
    ``CheckpointHook``, so nothing non-finite is saved); ``action='skip'`` logs and goes on,
    and stops after ``max_consecutive_skips`` skipped steps in a row. Mixed-precision wrappers
    with a loss scaler skip inf gradients themselves (they are expected there): only the loss
    is checked with them. A validation that yields no metrics at all raises
    :class:`EmptyValidationError` (``empty_validation='warn'`` only logs it).

    Use: ``custom_hooks=[dict(type='NanGuardHook', action='skip')]``.
    """

    priority = "ABOVE_NORMAL"

    def __init__(self, action: str = "stop", max_consecutive_skips: int = 10,
                 empty_validation: str = "error"):
        if action not in ACTIONS:
            raise ValueError(f"NanGuardHook action={action!r}; allowed: {', '.join(ACTIONS)}")
        if empty_validation not in ("error", "warn"):
            raise ValueError(f"NanGuardHook empty_validation={empty_validation!r}; "
                             "allowed: error, warn")
        if max_consecutive_skips < 1:
            raise ValueError(f"max_consecutive_skips must be >= 1, got {max_consecutive_skips}")
        self.action = action
        self.max_consecutive_skips = max_consecutive_skips
        self.empty_validation = empty_validation
        self._bad_grad_norm: float | None = None
        self._skipped_in_a_row = 0

    def before_train(self, runner) -> None:
        for wrapper in _optim_wrappers(runner.optim_wrapper):
            if getattr(wrapper, "loss_scaler", None) is None:
                self._guard_step(wrapper)

    def _guard_step(self, wrapper: OptimWrapper) -> None:
        """Check the gradients before ``wrapper.step``; skip the step when they are not finite."""
        if getattr(wrapper.step, "_nan_guarded", False):
            return
        original = wrapper.step

        def step(**kwargs):
            params = [p for group in wrapper.optimizer.param_groups for p in group["params"]]
            norm = gradient_norm(params)
            if math.isfinite(norm):
                return original(**kwargs)
            self._bad_grad_norm = norm
            return None

        step._nan_guarded = True
        wrapper.step = step

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        bad_terms = {name: float(value.detach().float().mean())
                     for name, value in (outputs or {}).items()
                     if torch.is_tensor(value) and value.is_floating_point()
                     and not bool(torch.isfinite(value).all())}
        bad_norm, self._bad_grad_norm = self._bad_grad_norm, None
        if not bad_terms and bad_norm is None:
            self._skipped_in_a_row = 0
            return
        what = ", ".join(f"{name}={value}" for name, value in bad_terms.items())
        if bad_norm is not None:
            what = f"{what}, gradient norm={bad_norm}" if what else f"gradient norm={bad_norm}"
        iteration = runner.iter + 1
        self._skipped_in_a_row += 1
        if self.action == "skip" and self._skipped_in_a_row < self.max_consecutive_skips:
            print_log(f"NanGuardHook: iteration {iteration}: non-finite {what}; optimizer step "
                      f"skipped ({self._skipped_in_a_row} in a row)", logger="current",
                      level=logging.WARNING)
            return
        in_a_row = (f" ({self._skipped_in_a_row} steps in a row)"
                    if self.action == "skip" else "")
        raise NonFiniteError(
            f"training stopped at iteration {iteration}: non-finite {what}{in_a_row}; the step "
            f"was not applied and no checkpoint was written. Last good checkpoint: "
            f"{last_good_checkpoint(runner.work_dir) or 'none'}. Lower the learning rate or "
            "add clip_grad to optim_wrapper, then resume from it")

    def after_val_epoch(self, runner, metrics=None) -> None:
        if metrics:
            return
        message = (f"validation at iteration {runner.iter} produced no metrics: the evaluator "
                   "had no results (for detectors: no box predicted on any image, e.g. "
                   "non-finite weights or far too little training)")
        if self.empty_validation == "warn":
            print_log(f"NanGuardHook: {message}", logger="current", level=logging.WARNING)
            return
        raise EmptyValidationError(message)
