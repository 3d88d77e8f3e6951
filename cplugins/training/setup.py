"""Add the training safeguards to a config (what ``tools/train.py`` does by default)."""
from __future__ import annotations

from mmengine.config import Config

#: hooks added to ``custom_hooks`` unless the config lists them already (then its settings win)
SAFEGUARD_HOOKS = ("NanGuardHook", "RandomStateHook")


def add_custom_hook(cfg: Config, hook_type: str) -> None:
    """Append ``dict(type=hook_type)`` to ``custom_hooks`` unless the config lists that hook
    already (then its settings win)."""
    hooks = list(cfg.get("custom_hooks") or [])
    if not any(isinstance(h, dict) and h.get("type") == hook_type for h in hooks):
        hooks.append(dict(type=hook_type))
    cfg.custom_hooks = hooks


def add_training_safeguards(cfg: Config, nan_guard: bool = True) -> Config:
    """Add ``NanGuardHook`` (unless ``nan_guard`` is False) and ``RandomStateHook`` to
    ``custom_hooks``, and write checkpoints with ``AtomicCheckpointHook``.

    A config that lists one of these hooks keeps its own settings; ``CheckpointHook``
    arguments carry over unchanged.
    """
    hooks = list(cfg.get("custom_hooks") or [])
    present = {h.get("type") for h in hooks if isinstance(h, dict)}
    for name in SAFEGUARD_HOOKS:
        if name == "NanGuardHook" and not nan_guard:
            hooks = [h for h in hooks if not (isinstance(h, dict) and h.get("type") == name)]
            continue
        if name not in present:
            hooks.append(dict(type=name))
    cfg.custom_hooks = hooks
    checkpoint = (cfg.get("default_hooks") or {}).get("checkpoint")
    if isinstance(checkpoint, dict) and checkpoint.get("type") in ("CheckpointHook",
                                                                   "mmengine.CheckpointHook"):
        checkpoint["type"] = "AtomicCheckpointHook"
    return cfg


def seed_ranks_apart(cfg: Config, seed: int | None = None) -> bool:
    """Give each process its own random stream: rank ``r`` draws from ``seed + r``
    (mmengine's ``randomness.diff_rank_seed``). ``seed`` (``--seed``) overrides the config's
    ``randomness.seed``; without any seed nothing changes (mmengine then draws one seed
    for all ranks). The samplers keep ``seed`` itself, so the data order is the one a
    single process would use. Returns whether ranks were seeded apart.

    With one process (rank 0) the result equals a plain ``randomness.seed`` run.
    """
    randomness = dict(cfg.get("randomness") or {})
    if seed is not None:
        randomness["seed"] = seed
    if randomness.get("seed") is None:
        cfg.randomness = randomness or dict(seed=None)
        return False
    randomness["diff_rank_seed"] = True
    cfg.randomness = randomness
    for split in ("train_dataloader", "val_dataloader", "test_dataloader"):
        sampler = (cfg.get(split) or {}).get("sampler")
        if isinstance(sampler, dict) and sampler.get("seed") is None:
            sampler["seed"] = randomness["seed"]
    return True


def add_multiprocess_options(cfg: Config, sync_bn: bool, global_loss_norm: bool,
                             cuda: bool) -> Config:
    """What makes N processes at batch b train like one process at batch N*b (as far as it
    can): BatchNorm over all ranks (``sync_bn``: torch's ``SyncBatchNorm`` on CUDA,
    :class:`~cplugins.training.cross_rank_bn.CrossRankBatchNormHook` on CPU) and mmdet
    anchor-head losses normalised by every rank's positives (``global_loss_norm``:
    :class:`~cplugins.training.loss_norm.GlobalLossNormHook`)."""
    hooks = list(cfg.get("custom_hooks") or [])
    present = {h.get("type") for h in hooks if isinstance(h, dict)}
    if sync_bn:
        if cuda:
            cfg.sync_bn = "torch"
        elif "CrossRankBatchNormHook" not in present:
            hooks.append(dict(type="CrossRankBatchNormHook"))
    if global_loss_norm and "GlobalLossNormHook" not in present:
        hooks.append(dict(type="GlobalLossNormHook"))
    cfg.custom_hooks = hooks
    return cfg
