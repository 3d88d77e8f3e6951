"""Input generators of benchmark cases: tensors from the plain ``inputs`` spec of a case.

Each generator is ``fn(params, batch_size, input_size, device, rng) -> Inputs``; ``batch_size``
and ``input_size`` (image H, W) override the case's defaults where the generator has such a
notion (losses and heads have a batch but no image size: ``input_size`` does not apply).
"""
from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from cplugins.cases import GENERATORS, is_target


@dataclass
class Inputs:
    """Generated inputs: ``forward(*args, **kwargs)``; the train method gets ``train_args``
    (``None``: the same as forward). ``shapes`` describes them for tables and records."""

    args: tuple
    kwargs: dict = field(default_factory=dict)
    train_args: tuple | None = None
    shapes: str = ""
    batch: int = 0
    image_size: tuple[int, int] | None = None

    def tensors(self) -> list[Tensor]:
        """Every tensor in the inputs (forward and train), once."""
        found: dict[int, Tensor] = {}
        _collect(self.args, found)
        _collect(self.kwargs, found)
        _collect(self.train_args, found)
        return list(found.values())


def _collect(obj: Any, found: dict[int, Tensor]) -> None:
    if isinstance(obj, Tensor):
        found[id(obj)] = obj
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            _collect(item, found)
    elif isinstance(obj, dict):
        for item in obj.values():
            _collect(item, found)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"input parameter {name} must be an int > 0, got {value!r}")
    return value


def _shape(name: str, value: Any, rank: int | None = None) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not value or (rank and len(value) != rank):
        want = f"{rank} ints" if rank else "a non-empty tuple of ints"
        raise ValueError(f"input parameter {name} must be {want} > 0, got {value!r}")
    return tuple(_positive_int(f"{name}[{i}]", v) for i, v in enumerate(value))


def _image_size(params: dict, input_size: tuple[int, int] | None) -> tuple[int, int]:
    size = input_size if input_size is not None else params.get("image_size")
    return _shape("image_size", size, 2)  # type: ignore[return-value]


def feature_size(size: int, stride: int) -> int:
    """Side of a stride-``stride`` backbone feature of a ``size`` image (ResNet-style:
    every stride-2 stage gives ``ceil(size / 2)``), e.g. 800 / 32 -> 25, 1216 / 32 -> 38."""
    _positive_int("size", size)
    if isinstance(stride, bool) or not isinstance(stride, int) or stride <= 0 \
            or stride & (stride - 1):
        raise ValueError(f"strides must be powers of two, got {stride!r}")
    for _ in range(int(math.log2(stride))):
        size = -(-size // 2)
    return size


def pyramid_shapes(channels: Sequence[int], strides: Sequence[int], image_size: Sequence[int],
                   batch: int) -> list[tuple[int, int, int, int]]:
    """(N, C_i, H_i, W_i) of backbone levels ``channels`` at ``strides`` of an image."""
    channels = _shape("channels", channels)
    strides = _shape("strides", strides)
    if len(channels) != len(strides):
        raise ValueError(f"input parameters channels {list(channels)} and strides "
                         f"{list(strides)} must have the same length")
    h, w = _shape("image_size", image_size, 2)
    batch = _positive_int("batch", batch)
    return [(batch, c, feature_size(h, s), feature_size(w, s)) for c, s in zip(channels, strides)]


def _randn(shape: Sequence[int], device: torch.device, rng: torch.Generator,
           grad: bool) -> Tensor:
    x = torch.randn(tuple(shape), generator=rng).to(device)
    return x.requires_grad_(grad)


def _fmt(shape: Sequence[int]) -> str:
    return "x".join(str(s) for s in shape)


def image(params: dict, batch_size: int | None, input_size: tuple[int, int] | None,
          device: torch.device, rng: torch.Generator) -> Inputs:
    """``x`` (N, C, H, W) images (no gradient)."""
    n, c, h, w = _shape("shape", params.get("shape"), 4)
    n = batch_size or n
    if input_size is not None:
        h, w = _shape("input_size", input_size, 2)
    x = _randn((n, c, h, w), device, rng, grad=False)
    return Inputs((x,), shapes=_fmt(x.shape), batch=n, image_size=(h, w))


def feature_pyramid(params: dict, batch_size: int | None, input_size: tuple[int, int] | None,
                    device: torch.device, rng: torch.Generator) -> Inputs:
    """Backbone levels of a (H, W) image as a list (``single``: the one tensor), with grad."""
    batch = batch_size or params.get("batch", 2)
    size = _image_size(params, input_size)
    shapes = pyramid_shapes(params.get("channels"), params.get("strides"), size, batch)
    feats = [_randn(s, device, rng, grad=True) for s in shapes]
    desc = "[" + ", ".join(_fmt(s) for s in shapes) + f"] of {_fmt(size)}"
    if params.get("single", False):
        if len(feats) != 1:
            raise ValueError(f"input parameter single=True needs one level, got {len(feats)}")
        return Inputs((feats[0],), shapes=desc, batch=batch, image_size=size)
    return Inputs((feats,), shapes=desc, batch=batch, image_size=size)


def _labels(kind: Any, n: int, num_classes: int, rng: torch.Generator,
            device: torch.device) -> Tensor:
    if kind == "int":
        return torch.randint(0, num_classes, (n,), generator=rng).to(device)
    if kind == "multilabel":
        return (torch.rand(n, num_classes, generator=rng) < 0.1).float().to(device)
    raise ValueError(f"input parameter labels must be 'int' or 'multilabel', got {kind!r}")


def cls_features(params: dict, batch_size: int | None, input_size: tuple[int, int] | None,
                 device: torch.device, rng: torch.Generator) -> Inputs:
    """``feats`` tuple with one (N, C) tensor for ``forward``, plus mmpretrain DataSamples
    with labels for ``loss(feats, data_samples)``."""
    from mmpretrain.structures import DataSample

    n, c = _shape("feats", params.get("feats"), 2)
    n = batch_size or n
    num_classes = _positive_int("num_classes", params.get("num_classes"))
    feats = _randn((n, c), device, rng, grad=True)
    labels = _labels(params.get("labels", "int"), n, num_classes, rng, device)
    samples = []
    for row in labels:
        sample = DataSample()
        if row.dim() == 0:
            sample.set_gt_label(row)
        else:
            sample.set_gt_score(row)
        samples.append(sample)
    return Inputs(((feats,),), train_args=((feats,), samples),
                  shapes=f"feats {_fmt(feats.shape)}, labels {params.get('labels', 'int')}",
                  batch=n)


def scores(params: dict, batch_size: int | None, input_size: tuple[int, int] | None,
           device: torch.device, rng: torch.Generator) -> Inputs:
    """``(logits, labels[, weight])`` for a loss; logits (N, C) with grad."""
    n, c = _shape("logits", params.get("logits"), 2)
    n = batch_size or n
    logits = _randn((n, c), device, rng, grad=True)
    labels = _labels(params.get("labels", "int"), n, c, rng, device)
    args: tuple = (logits, labels)
    desc = f"logits {_fmt(logits.shape)}, labels {params.get('labels', 'int')}"
    if params.get("weight") is not None:
        shape = _shape("weight", params["weight"])
        weight = torch.ones((n, *shape[1:]), device=device)
        args += (weight,)
        desc += f", weight {_fmt(weight.shape)}"
    return Inputs(args, shapes=desc, batch=n)


def random_boxes(num: int, image_size: tuple[int, int], rng: torch.Generator,
                 min_side: int = 8) -> Tensor:
    """(num, 4) float boxes x1, y1, x2, y2 inside a (H, W) image, sides in
    [min_side, max(min_side, side / 2)]."""
    h, w = image_size
    out = torch.empty(num, 4)
    for dim, size in ((0, w), (1, h)):
        hi = max(min_side + 1, size // 2)
        side = torch.randint(min_side, hi, (num,), generator=rng).float().clamp(max=size - 1)
        start = torch.rand(num, generator=rng) * (size - 1 - side)
        out[:, dim] = start
        out[:, dim + 2] = start + side
    return out


def rois(params: dict, batch_size: int | None, input_size: tuple[int, int] | None,
         device: torch.device, rng: torch.Generator) -> Inputs:
    """``(feats, rois)`` for an RoI extractor: neck levels (tuple, with grad) and (K, 5)
    RoIs ``[batch_index, x1, y1, x2, y2]`` in image coordinates."""
    batch = batch_size or params.get("batch", 2)
    size = _image_size(params, input_size)
    shapes = pyramid_shapes(params.get("channels"), params.get("strides"), size, batch)
    per_image = _positive_int("rois_per_image", params.get("rois_per_image", 512))
    feats = tuple(_randn(s, device, rng, grad=True) for s in shapes)
    boxes = [torch.cat([torch.full((per_image, 1), float(i)),
                        random_boxes(per_image, size, rng)], dim=1) for i in range(batch)]
    roi = torch.cat(boxes).to(device)
    desc = ("[" + ", ".join(_fmt(s) for s in shapes) + f"] of {_fmt(size)}, "
            f"rois {_fmt(roi.shape)}")
    return Inputs((feats, roi), shapes=desc, batch=batch, image_size=size)


def detection_batch(params: dict, batch_size: int | None, input_size: tuple[int, int] | None,
                    device: torch.device, rng: torch.Generator) -> Inputs:
    """A data batch as mmdet's dataloader yields it: ``{"inputs": [uint8 (3, H, W)],
    "data_samples": [DetDataSample]}`` with ``num_gt`` random boxes per image and labels
    below ``num_classes``. The images stay on the CPU (the data preprocessor moves them)."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    batch = _positive_int("batch", batch_size or params.get("batch", 2))
    h, w = _image_size(params, input_size)
    num_gt = _positive_int("num_gt", params.get("num_gt", 8))
    num_classes = _positive_int("num_classes", params.get("num_classes", 80))
    images, samples = [], []
    for _ in range(batch):
        images.append(torch.randint(0, 256, (3, h, w), generator=rng, dtype=torch.uint8))
        sample = DetDataSample(metainfo=dict(
            img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w), scale_factor=(1.0, 1.0),
            flip=False, flip_direction=None, img_id=0, img_path=""))
        instances = InstanceData()
        instances.bboxes = random_boxes(num_gt, (h, w), rng, min_side=16)
        instances.labels = torch.randint(0, num_classes, (num_gt,), generator=rng)
        sample.gt_instances = instances
        sample.ignored_instances = InstanceData(bboxes=torch.zeros(0, 4),
                                                labels=torch.zeros(0, dtype=torch.long))
        samples.append(sample)
    data = {"inputs": images, "data_samples": samples}
    return Inputs((data,), shapes=f"{batch}x3x{h}x{w} uint8, {num_gt} boxes/image",
                  batch=batch, image_size=(h, w))


_BUILTIN: dict[str, Callable[..., Inputs]] = {
    "image": image,
    "feature_pyramid": feature_pyramid,
    "cls_features": cls_features,
    "scores": scores,
    "rois": rois,
    "detection_batch": detection_batch,
}
assert set(_BUILTIN) == set(GENERATORS), "cplugins.cases.GENERATORS out of sync"


def resolve_generator(name: str) -> Callable[..., Inputs]:
    """The generator function of a case's ``inputs["generator"]``."""
    if name in _BUILTIN:
        return _BUILTIN[name]
    if is_target(name):
        module, _, attr = name.partition(":")
        return getattr(importlib.import_module(module), attr)
    raise ValueError(f"input generator {name!r}: allowed: {', '.join(_BUILTIN)} or "
                     "'package.module:func'")


def generate(generator: str, params: dict, *, batch_size: int | None = None,
             input_size: tuple[int, int] | None = None, device: torch.device | str = "cpu",
             seed: int = 0, extra: dict | None = None) -> Inputs:
    """Build the inputs of a case (deterministic for a ``seed``); ``extra`` adds parameters."""
    if batch_size is not None:
        _positive_int("batch_size", batch_size)
    if input_size is not None:
        _shape("input_size", input_size, 2)
    rng = torch.Generator().manual_seed(seed)
    fn = resolve_generator(generator)
    result = fn({**params, **(extra or {})}, batch_size, input_size, torch.device(device), rng)
    if not isinstance(result, Inputs):
        raise TypeError(f"input generator {generator!r} returned {type(result).__name__}, "
                        "expected cplugins.inputs.Inputs")
    return result


# ---- outputs of a module under test (check, bench)
def flatten_tensors(obj: Any) -> list[Tensor]:
    """Tensors in an output: tensors, lists/tuples, dicts (mmengine loss dicts), in order."""
    if isinstance(obj, Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for item in obj for t in flatten_tensors(item)]
    if isinstance(obj, dict):
        return [t for item in obj.values() for t in flatten_tensors(item)]
    return []


def scalar_for_backward(output: Any, label: str) -> Tensor:
    """Sum of every differentiable tensor of ``output`` (a loss dict, a tuple of maps...)."""
    parts = [t.float().sum() for t in flatten_tensors(output)
             if t.requires_grad and t.is_floating_point()]
    if not parts:
        raise ValueError(f"{label}: its output has no tensor that requires grad; nothing to "
                         "backpropagate (does the case's train_method return its loss?)")
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total
