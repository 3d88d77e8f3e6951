"""``train_detector``: the entry point of Deep Lake's mmdet 2 integration, for mmdet 3.

Deep Lake's mmdet 2 configs put ``deeplake_dataloader`` (``batch_size``, ``num_workers``,
``shuffle``) in each dataset and ``deeplake_metrics_format`` at the top; mmengine keeps those
settings in the dataloader and the evaluator, so :func:`apply_deeplake_keys` moves them there.
"""
from __future__ import annotations

import copy
from collections.abc import MutableMapping

from .layout import with_instances
from .source import DeepLakeError

#: deeplake_dataloader keys -> what sets them in mmengine
DATALOADER_KEYS = {"batch_size": "batch_size", "num_workers": "num_workers",
                   "shuffle": "sampler.shuffle"}
#: deeplake_metrics_format values -> the mmdet 3 evaluator
METRICS_FORMATS = {"COCO": "CocoMetric"}
_LOADERS = (("train_dataloader", None), ("val_dataloader", "val_evaluator"),
            ("test_dataloader", "test_evaluator"))


def _innermost(dataset: MutableMapping) -> MutableMapping:
    while isinstance(dataset.get("dataset"), MutableMapping):
        dataset = dataset["dataset"]
    return dataset


def _move_dataloader_settings(loader: MutableMapping, where: str) -> None:
    dataset = _innermost(loader.get("dataset") or {})
    settings = dataset.pop("deeplake_dataloader", None)
    if settings is None:
        return
    unknown = sorted(set(settings) - set(DATALOADER_KEYS))
    if unknown:
        raise DeepLakeError(f"{where}.dataset.deeplake_dataloader: unknown key(s) "
                            f"{', '.join(unknown)}; allowed: {', '.join(DATALOADER_KEYS)}")
    for key in ("batch_size", "num_workers"):
        if key in settings:
            loader[key] = settings[key]
    if settings.get("num_workers") == 0:
        loader["persistent_workers"] = False  # mmengine refuses it without workers
    if "shuffle" in settings:
        sampler = dict(loader.get("sampler") or {"type": "DefaultSampler"})
        loader["sampler"] = dict(sampler, shuffle=bool(settings["shuffle"]))


def apply_deeplake_keys(cfg: MutableMapping) -> None:
    """Move Deep Lake's mmdet 2 keys of ``cfg`` (in place) where mmengine reads them:
    ``deeplake_dataloader`` of a dataset -> its dataloader's ``batch_size``, ``num_workers``
    and ``sampler.shuffle``; ``deeplake_metrics_format='COCO'`` -> ``CocoMetric`` evaluators
    without ``ann_file`` (the metric from mmdet 2's ``evaluation.metric``, default ``bbox``)
    and ``instances`` packed for them."""
    for key, _ in _LOADERS:
        if isinstance(cfg.get(key), MutableMapping):
            _move_dataloader_settings(cfg[key], key)
    if "deeplake_metrics_format" not in cfg:
        return
    fmt = cfg.pop("deeplake_metrics_format")
    if fmt not in METRICS_FORMATS:
        raise DeepLakeError(f"deeplake_metrics_format={fmt!r} is not supported; allowed: "
                            + ", ".join(f"{k!r} ({v})" for k, v in METRICS_FORMATS.items()))
    metric = (cfg.get("evaluation") or {}).get("metric", "bbox")
    for loader_key, evaluator_key in _LOADERS[1:]:
        loader = cfg.get(loader_key)
        if not isinstance(loader, MutableMapping):
            continue
        cfg[evaluator_key] = dict(type=METRICS_FORMATS[fmt], metric=metric, ann_file=None)
        dataset = _innermost(loader.get("dataset") or {})
        dataset["pipeline"] = [with_instances(t) for t in dataset.get("pipeline", [])]


def train_detector(cfg, distributed: bool = False, validate: bool = True):
    """Train ``cfg`` (an mmengine ``Config``, a dict or a config file) with a stock mmengine
    ``Runner``, as ``deeplake.integrations.mmdet.train_detector`` does for mmdet 2.

    ``distributed``: launched by ``torchrun`` (``launcher='pytorch'``); ``validate=False``
    drops the validation loop; Deep Lake's ``deeplake_dataloader`` and
    ``deeplake_metrics_format`` are applied (:func:`apply_deeplake_keys`). Returns the
    trained runner.
    """
    from mmengine.config import Config
    from mmengine.runner import Runner

    if isinstance(cfg, str):
        cfg = Config.fromfile(cfg)
    cfg = copy.deepcopy(cfg) if isinstance(cfg, Config) else Config(copy.deepcopy(dict(cfg)))
    apply_deeplake_keys(cfg)
    cfg.launcher = "pytorch" if distributed else "none"
    if not validate:
        cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner
