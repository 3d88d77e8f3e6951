"""What is timed: a module (forward / forward+backward) or a detector (train step / inference).

A :class:`Workload` exposes, per mode, a step callable (the timed part) and a reset (untimed:
drops gradients so every step starts from the same state). Module and baseline of a case
share the very same input tensors.
"""
from __future__ import annotations

import contextlib
import copy
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from cplugins.cases import BenchmarkCase, is_target
from cplugins.inputs import Inputs, flatten_tensors, scalar_for_backward
from cplugins.manager import import_target

MODULE_MODES = ("fwd", "fwd+bwd")
DETECTOR_MODES = ("infer", "train")


def autocast(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """Mixed precision as mmengine's AmpOptimWrapper runs it; nothing for float32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _activate_everything() -> None:
    from cplugins.manager import get_manager

    get_manager().activate_all()


def build_module(cfg: dict, scope: str) -> nn.Module:
    """Build ``cfg`` (``type``: a name in ``scope``'s model registry, or an import target)."""
    from mmengine.registry import DefaultScope

    from cplugins.diagnose import explain_unknown_types
    from cplugins.registries import resolve
    from cplugins.spec import RegistryRef

    cfg = copy.deepcopy(dict(cfg))
    kind = cfg.get("type")
    if is_target(kind):
        cfg.pop("type")
        return import_target(kind)(**cfg)
    registry = resolve(RegistryRef(scope, "model"))
    registry.import_from_location()
    if registry.get(kind) is None:  # provided by a plugin that is not active yet
        _activate_everything()
    with DefaultScope.overwrite_default_scope(scope), explain_unknown_types():
        module = registry.build(cfg)
    if not isinstance(module, nn.Module):
        raise TypeError(f"{kind!r} built a {type(module).__name__}, not a torch.nn.Module")
    return module


def _channels_last(obj: Any) -> Any:
    if isinstance(obj, Tensor):
        if obj.dim() != 4 or not obj.is_floating_point():
            return obj
        out = obj.detach().contiguous(memory_format=torch.channels_last)
        return out.requires_grad_(obj.requires_grad)
    if isinstance(obj, list):
        return [_channels_last(o) for o in obj]
    if isinstance(obj, tuple):
        return tuple(_channels_last(o) for o in obj)
    if isinstance(obj, dict):
        return {k: _channels_last(v) for k, v in obj.items()}
    return obj


def to_channels_last(inputs: Inputs) -> Inputs:
    """The same inputs with every 4-D float tensor in channels-last layout (leaves kept)."""
    mapping: dict[int, Tensor] = {}

    def convert(obj: Any) -> Any:
        if isinstance(obj, Tensor):
            if id(obj) not in mapping:
                mapping[id(obj)] = _channels_last(obj)
            return mapping[id(obj)]
        if isinstance(obj, list):
            return [convert(o) for o in obj]
        if isinstance(obj, tuple):
            return tuple(convert(o) for o in obj)
        if isinstance(obj, dict):
            return {k: convert(v) for k, v in obj.items()}
        return obj

    return Inputs(convert(inputs.args), convert(inputs.kwargs),
                  None if inputs.train_args is None else convert(inputs.train_args),
                  inputs.shapes, inputs.batch, inputs.image_size)


@dataclass
class Step:
    """One timed unit: ``run`` is timed, ``reset`` is not; ``flops`` runs it uncompiled."""

    run: Callable[[], object]
    reset: Callable[[], None]
    flops: Callable[[], object]


class Workload:
    """A named thing to time, with one :class:`Step` per mode."""

    def __init__(self, label: str, role: str, steps: dict[str, Step],
                 module: nn.Module | None = None) -> None:
        self.label = label
        self.role = role  # "module" | "baseline"
        self.steps = steps
        self.module = module


def module_workload(label: str, role: str, module: nn.Module, inputs: Inputs,
                    train_method: str, device: torch.device, dtype: torch.dtype,
                    compile_module: bool = False) -> Workload:
    """Forward (eval mode, no grad) and forward+backward (train mode) of ``module``."""
    if not callable(getattr(module, train_method, None)):
        raise ValueError(f"{label}: train_method {train_method!r} is not a method of "
                         f"{type(module).__name__}")
    eager = module
    timed = module
    if compile_module:
        timed = torch.compile(module)
    args, kwargs = inputs.args, inputs.kwargs
    train_args = inputs.train_args if inputs.train_args is not None else inputs.args
    train_kwargs = {} if inputs.train_args is not None else inputs.kwargs
    input_tensors = [t for t in inputs.tensors() if t.requires_grad]
    params = [p for p in module.parameters() if p.requires_grad]

    def forward(target: nn.Module) -> Callable[[], object]:
        def run() -> object:
            eager.eval()
            with torch.no_grad(), autocast(device, dtype):
                return target(*args, **kwargs)
        return run

    def train(target: nn.Module) -> Callable[[], object]:
        method = train_method if train_method != "forward" else None

        def run() -> object:
            eager.train()
            with autocast(device, dtype):
                fn = getattr(eager, method) if method else target
                out = fn(*train_args, **train_kwargs)
                loss = scalar_for_backward(out, label)
            loss.backward()
            return loss
        return run

    def reset() -> None:
        for tensor in (*params, *input_tensors):
            tensor.grad = None

    return Workload(label, role, {
        "fwd": Step(forward(timed), reset, forward(eager)),
        "fwd+bwd": Step(train(timed), reset, train(eager)),
    }, module)


# --- detectors ----------------------------------------------------------------------------
@contextlib.contextmanager
def _config_file(config: str) -> Iterator[str]:
    """A temporary config inheriting ``config`` (a path or ``"mmdet::..."``)."""
    base = config if "::" in config else os.path.abspath(config)
    if "::" not in config and not os.path.isfile(base):
        raise ValueError(f"detector config {config!r}: no such file")
    with tempfile.TemporaryDirectory(prefix="cplugins-bench-") as tmp:
        path = os.path.join(tmp, "bench_config.py")
        with open(path, "w") as f:
            f.write(f"_base_ = [{base!r}]\n")
        yield path


def load_detector_config(config: str, options: dict | None = None):
    """The mmengine Config of ``config`` with cfg-options ``options`` merged."""
    from mmengine.config import Config

    with _config_file(config) as path:
        cfg = Config.fromfile(path)
    if options:
        cfg.merge_from_dict(dict(options))
    if "model" not in cfg:
        raise ValueError(f"detector config {config!r} has no 'model'")
    return cfg


def num_classes_of(cfg) -> int:
    """Classes of a detector config (RoI head, else dense head), default 80."""
    model = cfg.model
    for path in (("roi_head", "bbox_head"), ("bbox_head",), ("rpn_head",)):
        node = model
        for key in path:
            node = node.get(key) if hasattr(node, "get") else None
            if node is None:
                break
        if isinstance(node, list):
            node = node[-1]
        if node is not None and hasattr(node, "get") and node.get("num_classes"):
            return int(node["num_classes"])
    return 80


def build_detector(cfg, device: torch.device) -> nn.Module:
    """The model of ``cfg`` on ``device`` (random init: no pretrained weights are fetched)."""
    from mmengine.registry import DefaultScope

    from cplugins.diagnose import explain_unknown_types

    scope = cfg.get("default_scope", "mmdet")
    from cplugins.registries import resolve
    from cplugins.spec import RegistryRef

    registry = resolve(RegistryRef(scope, "model"))
    registry.import_from_location()
    _activate_everything()
    with DefaultScope.overwrite_default_scope(scope), explain_unknown_types():
        model = registry.build(copy.deepcopy(cfg.model))
    return model.to(device)


def detector_workload(label: str, role: str, model: nn.Module, inputs: Inputs,
                      device: torch.device, dtype: torch.dtype) -> Workload:
    """Train step (preprocess, losses, backward, SGD update at lr 0) and inference
    (``test_step``: preprocess, predict with post-processing) of a detector."""
    from mmengine.optim import OptimWrapper

    (data,) = inputs.args
    # lr 0: the step does all the work of an update but the model stays the same, so every
    # round times the same computation (random-init proposals do not drift)
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9,
                                                 weight_decay=1e-4))

    def train() -> object:
        model.train()
        with autocast(device, dtype):
            return model.train_step(data, optim_wrapper)

    def infer() -> object:
        model.eval()
        with torch.no_grad(), autocast(device, dtype):
            return model.test_step(data)

    def reset() -> None:
        optim_wrapper.zero_grad(set_to_none=True)

    return Workload(label, role, {"train": Step(train, reset, train),
                                  "infer": Step(infer, reset, infer)}, model)


def compare_outputs(module: nn.Module, baseline: nn.Module, inputs: Inputs) -> dict:
    """Forward both in float32 (eval, no grad) and report how far apart the outputs are."""
    with torch.no_grad():
        module.eval()
        baseline.eval()
        out_a = flatten_tensors(module(*inputs.args, **inputs.kwargs))
        out_b = flatten_tensors(baseline(*inputs.args, **inputs.kwargs))
    if len(out_a) != len(out_b) or any(a.shape != b.shape for a, b in zip(out_a, out_b)):
        return {"match": False, "reason": "output structures differ: "
                f"{[tuple(a.shape) for a in out_a]} vs {[tuple(b.shape) for b in out_b]}"}
    max_abs = max(float((a.float() - b.float()).abs().max()) for a, b in zip(out_a, out_b))
    max_ref = max(float(b.float().abs().max()) for b in out_b)
    match = all(torch.allclose(a.float(), b.float(), rtol=1e-4,
                               atol=1e-5 * max(1.0, float(b.float().abs().max())))
                for a, b in zip(out_a, out_b))
    return {"match": bool(match), "max_abs_diff": max_abs, "max_abs_reference": max_ref,
            "tolerance": "rtol 1e-4, atol 1e-5 * max(1, max|reference|)"}


def build_case_modules(case: BenchmarkCase, baseline_cfg: dict | None
                       ) -> tuple[nn.Module, nn.Module | None]:
    """Module and baseline of a module case, weights synchronised by ``weight_sync``."""
    module = build_module(case.module, case.scope)
    baseline = build_module(baseline_cfg, case.scope) if baseline_cfg is not None else None
    if baseline is not None and case.weight_sync:
        import_target(case.weight_sync)(module, baseline)
    return module, baseline
