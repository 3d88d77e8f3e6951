"""Add the training safeguards to a config (what ``tools/train.py`` does by default)."""
from __future__ import annotations

from mmengine.config import Config

#: hooks added to ``custom_hooks`` unless the config lists them already (then its settings win)
SAFEGUARD_HOOKS = ("NanGuardHook", "RandomStateHook")


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
