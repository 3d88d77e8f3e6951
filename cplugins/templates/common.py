"""Config edits shared by the built-in templates' render functions."""
from __future__ import annotations

import math
from collections.abc import Iterator, MutableMapping
from typing import Any

from cplugins.templates.model import TemplateError
from cplugins.training.weights import resolve_source

#: the built-in dataset wrapper behind ``min_samples_per_epoch`` (registered by cplugins)
MIN_SAMPLES_DATASET = "MinSamplesDataset"


def walk(node: Any) -> Iterator[MutableMapping]:
    """Every mapping inside ``node`` (itself included), depth first."""
    if isinstance(node, MutableMapping):
        yield node
        for value in list(node.values()):
            yield from walk(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from walk(value)


def set_num_classes(model: MutableMapping, num_classes: int) -> int:
    """Set every ``num_classes`` inside ``model``; returns how many were set."""
    count = 0
    for node in walk(model):
        if "num_classes" in node:
            node["num_classes"] = num_classes
            count += 1
    if not count:
        raise TemplateError("the model config has no num_classes to set")
    return count


def find_transform(pipeline: list[dict], kind: str) -> dict:
    for transform in pipeline:
        if transform.get("type") == kind:
            return transform
    raise TemplateError(f"the pipeline has no {kind} transform: "
                        f"{[t.get('type') for t in pipeline]}")


def replace_transform(pipeline: list[dict], kind: str, *new: dict) -> list[dict]:
    """``pipeline`` with the ``kind`` transform replaced by ``new`` (zero or more)."""
    index = pipeline.index(find_transform(pipeline, kind))
    return pipeline[:index] + [dict(t) for t in new] + pipeline[index + 1:]


def innermost_dataset(dataset: MutableMapping) -> MutableMapping:
    """The dataset a chain of wrappers (``RepeatDataset``, ...) ends in."""
    while isinstance(dataset.get("dataset"), MutableMapping):
        dataset = dataset["dataset"]
    return dataset


def min_samples(dataset: dict, minimum: int) -> dict:
    """Wrap ``dataset`` so that an epoch has at least ``minimum`` samples (0: unchanged)."""
    if minimum <= 0:
        return dataset
    return dict(type=MIN_SAMPLES_DATASET, dataset=dataset, min_samples=minimum)


def set_lr(cfg: MutableMapping, lr: float) -> None:
    cfg["optim_wrapper"]["optimizer"]["lr"] = lr


def per_item_lr(hp: dict[str, Any]) -> float:
    """``lrate = batch_size * per_item_lrate``."""
    return hp["batch_size"] * hp["per_item_lrate"]


def scale_epoch_schedulers(cfg: MutableMapping, base_epochs: int, epochs: int) -> None:
    """Rescale the epoch-based schedulers of a ``base_epochs`` recipe to ``epochs``.

    ``begin``/``end``/``milestones``/``T_max`` move proportionally; a scheduler left with an
    empty span is dropped; iteration-based ones (warm-up) are kept as they are.
    """
    schedulers = cfg.get("param_scheduler") or []
    if isinstance(schedulers, MutableMapping):
        schedulers = [schedulers]

    def scale(value: int) -> int:
        return min(epochs, max(0, round(value * epochs / base_epochs)))

    result = []
    for scheduler in schedulers:
        scheduler = dict(scheduler)
        if not scheduler.get("by_epoch", True):
            result.append(scheduler)
            continue
        begin = scale(scheduler.get("begin", 0))
        end = scale(min(scheduler.get("end", base_epochs), base_epochs))
        if end <= begin:
            continue
        scheduler.update(begin=begin, end=end)
        if "milestones" in scheduler:
            scheduler["milestones"] = sorted({m for m in map(scale, scheduler["milestones"])
                                              if begin < m < end})
        if "T_max" in scheduler:
            scheduler["T_max"] = end - begin
        result.append(scheduler)
    cfg["param_scheduler"] = result


def epoch_loop(cfg: MutableMapping, epochs: int, val_interval: int | None = None) -> None:
    base = cfg.get("train_cfg") or {}
    interval = val_interval or base.get("val_interval", 1)
    cfg["train_cfg"] = dict(type="EpochBasedTrainLoop", max_epochs=epochs,
                            val_interval=max(1, min(interval, epochs)))


def step_milestones(init_epochs: int, step_epochs: int, num_epochs: int) -> list[int]:
    """Decay after ``init_epochs``, then every ``step_epochs``, strictly before the end."""
    milestones, epoch = [], init_epochs
    while epoch < num_epochs:
        milestones.append(epoch)
        epoch += step_epochs
    return milestones


def epochs_or_items(cfg: MutableMapping, epochs: int, batch_size: int, items_per_epoch: int,
                    schedulers: list[dict]) -> None:
    """Train ``epochs`` epochs: passes over the data, or ``items_per_epoch`` samples each.

    ``schedulers`` are written in epochs (``by_epoch=True``). With ``items_per_epoch`` the
    loop becomes iteration-based (``ceil(items_per_epoch / batch_size)`` iterations an
    epoch, an infinite shuffled sampler) and the schedulers are converted to iterations.
    """
    if items_per_epoch <= 0:
        cfg["train_cfg"] = dict(type="EpochBasedTrainLoop", max_epochs=epochs, val_interval=1)
        cfg["param_scheduler"] = [dict(s, by_epoch=True) for s in schedulers]
        return
    iters = math.ceil(items_per_epoch / batch_size)
    cfg["train_cfg"] = dict(type="IterBasedTrainLoop", max_iters=epochs * iters,
                            val_interval=iters)
    cfg["train_dataloader"]["sampler"] = dict(type="InfiniteSampler", shuffle=True)
    converted = []
    for scheduler in schedulers:
        scheduler = dict(scheduler, by_epoch=False)
        for key in ("begin", "end", "T_max"):
            if key in scheduler:
                scheduler[key] = scheduler[key] * iters
        if "milestones" in scheduler:
            scheduler["milestones"] = [m * iters for m in scheduler["milestones"]]
        converted.append(scheduler)
    cfg["param_scheduler"] = converted
    hooks = cfg.setdefault("default_hooks", {})
    hooks["checkpoint"] = dict(type="CheckpointHook", by_epoch=False, interval=iters)
    hooks.setdefault("logger", dict(type="LoggerHook"))["interval"] = min(
        hooks["logger"].get("interval", 50), iters)
    cfg["log_processor"] = dict(type="LogProcessor", by_epoch=False, window_size=10)


def drop_pretrained_init(node: MutableMapping | None) -> None:
    """Remove a ``Pretrained`` ``init_cfg`` (e.g. ``torchvision://resnet50``) from a module."""
    if node is None:
        return
    init = node.get("init_cfg")
    inits = init if isinstance(init, list) else [init]
    if any(isinstance(i, MutableMapping) and i.get("type") == "Pretrained" for i in inits):
        node["init_cfg"] = None


def start_from(cfg: MutableMapping, hp: dict[str, Any], aliases: dict[str, str]) -> None:
    """``load_from`` from ``pretrained_weights`` (an alias) or ``load_from`` (anything).

    The base's ImageNet backbone initialisation is dropped: ``none`` trains from scratch, and
    a whole-model checkpoint overwrites the backbone anyway (no needless download).
    """
    source = hp.get("load_from", "")
    choice = hp.get("pretrained_weights", "none")
    if choice not in ("", "none"):
        source = choice
    cfg["load_from"] = resolve_source(source, aliases)
    drop_pretrained_init(cfg["model"].get("backbone"))


def backbone_pretrained(cfg: MutableMapping, value: str, aliases: dict[str, str],
                        prefix: str | None = None) -> None:
    """``pretrained_weights`` of a backbone: an alias, a URL or a file; ``none``: scratch."""
    backbone = cfg["model"]["backbone"]
    checkpoint = resolve_source(value, aliases)
    if checkpoint is None:
        drop_pretrained_init(backbone)
        if "pretrained" in cfg["model"]:
            cfg["model"]["pretrained"] = None
        return
    init = dict(type="Pretrained", checkpoint=checkpoint)
    if prefix:
        init["prefix"] = prefix
    backbone["init_cfg"] = init
