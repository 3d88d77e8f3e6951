"""Weight synchronisation helpers a case can name as ``weight_sync``."""
from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def share_weights(module: nn.Module, baseline: nn.Module) -> int:
    """Copy every parameter / buffer of ``module`` into the same-named, same-shaped entry of
    ``baseline`` (e.g. AugFPN -> FPN: laterals and output convs); returns how many."""
    source = module.state_dict()
    copied = 0
    for name, tensor in baseline.state_dict().items():
        other = source.get(name)
        if other is not None and other.shape == tensor.shape:
            tensor.copy_(other)
            copied += 1
    if copied == 0:
        raise ValueError(f"share_weights: {type(module).__name__} and "
                         f"{type(baseline).__name__} have no parameter in common")
    return copied
