"""Multi-process training of each trial (``--launcher pytorch|slurm|mpi``).

Every process of the launch runs ``cplugins tune``; rank 0 alone owns the study: it samples a
trial, sends its number and values to the other ranks, and all of them train it together
(mmengine's distributed Runner). After each validation rank 0 asks the pruner and sends its
answer, so every rank stops a pruned trial at the same point. When the study is done rank 0
sends ``None`` and the others return.
"""
from __future__ import annotations

from typing import Any

#: what rank 0 sends when the study is done
DONE = None


def start(launcher: str) -> None:
    """Join the launch's process group (gloo without CUDA), once per process."""
    import torch
    from mmengine.dist import init_dist, is_distributed

    if not is_distributed():
        init_dist(launcher, backend="nccl" if torch.cuda.is_available() else "gloo")


def rank() -> int:
    from mmengine.dist import get_rank

    return get_rank()


def share(message: Any = None) -> Any:
    """Rank 0's ``message`` on every rank (a no-op without a process group)."""
    from mmengine.dist import broadcast_object_list, is_distributed

    if not is_distributed():
        return message
    box = [message]
    broadcast_object_list(box, src=0)
    return box[0]
