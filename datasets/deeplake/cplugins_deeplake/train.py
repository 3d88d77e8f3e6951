"""``train_detector``: the entry point of Deep Lake's mmdet 2 integration, for mmdet 3."""
from __future__ import annotations

import copy


def train_detector(cfg, distributed: bool = False, validate: bool = True):
    """Train ``cfg`` (an mmengine ``Config``, a dict or a config file) with a stock mmengine
    ``Runner``, as ``deeplake.integrations.mmdet.train_detector`` does for mmdet 2.

    ``distributed``: launched by ``torchrun`` (``launcher='pytorch'``); ``validate=False``
    drops the validation loop. Returns the trained runner.
    """
    from mmengine.config import Config
    from mmengine.runner import Runner

    if isinstance(cfg, str):
        cfg = Config.fromfile(cfg)
    cfg = copy.deepcopy(cfg) if isinstance(cfg, Config) else Config(copy.deepcopy(dict(cfg)))
    cfg.launcher = "pytorch" if distributed else "none"
    if not validate:
        cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner
