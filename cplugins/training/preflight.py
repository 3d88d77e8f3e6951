"""Checks of a config before anything is built (``tools/train.py``, ``tools/test.py``).

What would otherwise fail late (after the model is built, or after a whole epoch) or not at
all, each found in seconds and told in one line with the config key and what to do:

- optional packages a config's types need (``CityScapesMetric`` -> ``cityscapesscripts``,
  ``LVISMetric`` -> ``lvis``, ``Albu`` -> ``albumentations``...): :data:`OPTIONAL_PACKAGES`;
- checkpoints to download (``load_from``, ``init_cfg`` ``checkpoint``, ``pretrained``;
  ``torchvision://`` and ``open-mmlab://`` names resolved to their URL) that are neither
  cached nor reachable within ``CPLUGINS_DOWNLOAD_TIMEOUT`` seconds (default 5);
- mmdet 2 names in data pipelines that mmdet 3 renamed or removed (``Collect``,
  ``Translate``, ``MultiScaleFlipAug(img_scale=...)``, ``Resize(img_scale=...)``,
  ``Rotate(img_fill_val=...)``...; from mmdet's migration guide), any other argument a
  transform does not take, and ``Normalize`` in a pipeline while ``model.data_preprocessor``
  normalises too (errors); mmdet 2 top-level keys (``lr_config``, ``runner``, ``data``...)
  that mmengine ignores without a word, and mmdet 2's ``ColorTransform`` (in mmdet 3 the
  base class, which changes nothing) (warnings: mmseg's and mmpretrain's own configs keep a
  few such keys);
- a ``CocoMetric`` without ``ann_file`` (e.g. Deep Lake data) whose ``PackDetInputs`` does not
  pack the ``instances`` it reads the ground truth from (it would fail at the first validation).
"""
from __future__ import annotations

import importlib
import inspect
import os.path as osp
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any

from cplugins.diagnose import MMDET2_ARGUMENTS
from cplugins.training.errors import PreflightError

#: type -> (module the type imports, pip requirement), from the import guards of mmdet 3.3
OPTIONAL_PACKAGES: dict[str, tuple[str, str]] = {
    "CityScapesMetric": ("cityscapesscripts.evaluation.evalInstanceLevelSemanticLabeling",
                         "cityscapesscripts==2.3.0"),
    "LVISMetric": ("lvis", "git+https://github.com/lvis-dataset/lvis-api.git"),
    "LVISV05Dataset": ("lvis", "git+https://github.com/lvis-dataset/lvis-api.git"),
    "LVISV1Dataset": ("lvis", "git+https://github.com/lvis-dataset/lvis-api.git"),
    "LVISDataset": ("lvis", "git+https://github.com/lvis-dataset/lvis-api.git"),
    "CocoPanopticMetric": ("panopticapi", "git+https://github.com/cocodataset/panopticapi.git"),
    "LoadPanopticAnnotations": ("panopticapi",
                                "git+https://github.com/cocodataset/panopticapi.git"),
    "MOTChallengeMetric": ("trackeval", "git+https://github.com/JonathonLuiten/TrackEval.git"),
    "COCOCaptionMetric": ("pycocoevalcap", "pycocoevalcap"),
    "DumpODVGResults": ("jsonlines", "jsonlines"),
    "DODDataset": ("d_cube", "ddd-dataset"),
    "DSDLDetDataset": ("dsdl", "dsdl"),
    "Albu": ("albumentations", "albumentations"),
    "Corrupt": ("imagecorruptions", "imagecorruptions"),
    "InstaBoost": ("instaboostfast", "instaboostfast"),
    "MemoryProfilerHook": ("memory_profiler", "memory_profiler"),
}

#: config sections a run does not build (train: the test loop; test: training and validation)
_UNUSED_SECTIONS = {
    "train": {"test_dataloader", "test_evaluator", "test_cfg", "tta_model", "tta_pipeline"},
    "test": {"train_dataloader", "train_cfg", "val_dataloader", "val_evaluator", "val_cfg",
             "optim_wrapper", "param_scheduler"},
}

#: mmdet 2 transforms mmdet 3 removed or renamed (mmdet's docs/en/migration/config_migration.md)
MMDET2_TRANSFORMS: dict[str, str] = {
    "Collect": "PackDetInputs (it replaces DefaultFormatBundle and Collect; keys go to "
               "meta_keys)",
    "DefaultFormatBundle": "PackDetInputs (it replaces DefaultFormatBundle and Collect)",
    "ToDataContainer": "PackDetInputs",
    "Shear": "ShearX or ShearY (direction='horizontal'/'vertical')",
    "Translate": "TranslateX or TranslateY (direction='horizontal'/'vertical')",
    "BrightnessTransform": "Brightness",
    "ContrastTransform": "Contrast",
    "EqualizeTransform": "Equalize",
}
#: the mmdet 3 transform whose arguments an mmdet 2 one is checked against
MMDET2_SUCCESSORS: dict[str, str] = {
    "Shear": "ShearX", "Translate": "TranslateX", "BrightnessTransform": "Brightness",
    "ContrastTransform": "Contrast", "EqualizeTransform": "Equalize", "ColorTransform": "Color",
}
#: mmdet 2 transforms whose name still builds in mmdet 3 but does something else
MMDET2_SILENT: dict[str, str] = {
    "ImageToTensor": "PackDetInputs, which converts the image (drop ImageToTensor)",
}
#: names that build and run but change nothing: a warning (mmdet 3.3's own
#: semi_coco_detection.py lists ColorTransform among RandAugment's choices)
NO_OPS: dict[str, str] = {
    "ColorTransform": "mmdet 3's ColorTransform is the base class of the colour transforms "
                      "and changes nothing; mmdet 2's ColorTransform is mmdet 3's Color",
}
#: mmdet 2 / mmcv 1 top-level keys that mmengine's Runner ignores
MMDET2_KEYS: dict[str, str] = {
    "data": "train_dataloader / val_dataloader / test_dataloader (samples_per_gpu -> "
            "batch_size, workers_per_gpu -> num_workers)",
    "evaluation": "val_evaluator, and train_cfg.val_interval",
    "optimizer": "optim_wrapper=dict(optimizer=...)",
    "optimizer_config": "optim_wrapper (grad_clip -> clip_grad)",
    "lr_config": "param_scheduler",
    "momentum_config": "param_scheduler",
    "runner": "train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=N) (or "
              "IterBasedTrainLoop, max_iters=N)",
    "total_epochs": "train_cfg.max_epochs",
    "checkpoint_config": "default_hooks.checkpoint",
    "log_config": "default_hooks.logger",
    "workflow": "train_cfg / val_cfg",
}


# ----------------------------------------------------------------------------- walking
def _plain(cfg: Any) -> Any:
    return cfg.to_dict() if hasattr(cfg, "to_dict") and not isinstance(cfg, Mapping) else cfg


def _typed(node: Any, where: str, in_pipeline: bool = False
           ) -> Iterator[tuple[str, dict, bool]]:
    """``(config path, dict, inside a data pipeline)`` of every dict with a string ``type``."""
    if isinstance(node, Mapping):
        if isinstance(node.get("type"), str):
            yield where, node, in_pipeline
        for key, value in node.items():
            inner = in_pipeline or str(key).endswith("pipeline") or key in ("transforms",
                                                                            "policies")
            yield from _typed(value, f"{where}.{key}" if where else str(key), inner)
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from _typed(value, f"{where}[{index}]", in_pipeline)


def _sections(cfg: Mapping, purpose: str) -> dict:
    unused = _UNUSED_SECTIONS.get(purpose)
    if unused is None:
        raise ValueError(f"purpose={purpose!r}; allowed: {', '.join(_UNUSED_SECTIONS)}")
    return {key: value for key, value in cfg.items() if key not in unused}


def _short(type_name: str) -> tuple[str | None, str]:
    scope, _, short = type_name.rpartition(".")
    return scope or None, short


# ----------------------------------------------------------------------------- packages
def missing_packages(cfg: Any, purpose: str = "train") -> list[str]:
    """One line per optional package the config's types need that cannot be imported (at
    the first config key that needs it)."""
    problems, tried = [], {}
    for where, node, _ in _typed(_sections(_plain(cfg), purpose), ""):
        need = OPTIONAL_PACKAGES.get(_short(node["type"])[1])
        if need is None:
            continue
        module, requirement = need
        if module in tried:
            continue
        try:
            importlib.import_module(module)
            tried[module] = None
        except ImportError as exc:  # missing, or one of its own dependencies is
            tried[module] = str(exc)
        if tried[module] is not None:
            problems.append(
                f"{where} (type={node['type']!r}) needs the package {module.split('.')[0]}, "
                f"which cannot be imported ({tried[module]}): pip install '{requirement}'")
    return problems


# ----------------------------------------------------------------------------- checkpoints
def checkpoint_url(name: str) -> str | None:
    """The http(s) URL mmengine downloads for ``name`` (a URL, ``torchvision://``,
    ``modelzoo://``, ``open-mmlab://``, ``openmmlab://`` or ``mmcls://`` name); None for local
    files and other schemes (e.g. ``s3://``, read through their backends)."""
    from mmengine.runner import checkpoint as ckpt

    if name.startswith(("http://", "https://")):
        return name
    scheme, sep, model = name.partition("://")
    if not sep:
        return None
    try:
        if scheme in ("torchvision", "modelzoo"):
            return ckpt.get_torchvision_models()[model]
        if scheme in ("open-mmlab", "openmmlab"):
            model = ckpt.get_deprecated_model_names().get(model, model)
            url = ckpt.get_external_models()[model]
            return url if url.startswith(("http://", "https://")) else None
        if scheme == "mmcls":
            return ckpt.get_mmcls_models()[model]
    except KeyError:
        return None  # an unknown name: mmengine's own KeyError says so when it loads
    return None


def _head(url: str, timeout: float) -> str | None:
    request = urllib.request.Request(url, method="HEAD",
                                     headers={"User-Agent": "cplugins-preflight"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = getattr(response, "status", 200)
        return None if status < 400 else f"the server answered HTTP {status}"
    except urllib.error.HTTPError as exc:
        return f"the server answered HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        cause = getattr(exc, "reason", exc)
        return f"it cannot be reached within {timeout:g} s ({type(cause).__name__}: {cause})"


def unreachable_reason(url: str, timeout: float) -> str | None:
    """None when ``url`` is in mmengine's download cache or answers a ``HEAD`` request within
    ``timeout`` seconds; else why not (one phrase). The request runs in a daemon thread, so
    a name lookup that hangs (which urllib's timeout does not cover) cannot stall the run."""
    from cplugins.training.weights import cached_path

    if osp.isfile(cached_path(url)):
        return None
    answer: list[str | None] = []
    thread = threading.Thread(target=lambda: answer.append(_head(url, timeout)), daemon=True)
    thread.start()
    thread.join(timeout + 1)
    if not answer:
        return f"it did not answer within {timeout:g} s (name lookup or connection)"
    return answer[0]


def unreachable_checkpoints(cfg: Any, purpose: str = "train", load_from: Any = "config",
                            timeout: float | None = None) -> list[str]:
    """One line per checkpoint the run would download but cannot (see the module doc).

    ``load_from``: the checkpoint the run loads (``'config'``: the config's ``load_from``;
    None: none, e.g. resuming a local file). ``init_cfg`` checkpoints are loaded only by
    training (mmengine initialises weights before it loads ``load_from``).
    """
    from cplugins.training.weights import cached_path, download_timeout, iter_checkpoints

    plain = dict(_plain(cfg))
    if load_from != "config":
        plain["load_from"] = load_from
    timeout = download_timeout() if timeout is None else timeout
    problems = []
    for where, name in iter_checkpoints(plain):
        if where != "load_from" and purpose != "train":
            continue
        url = checkpoint_url(name)
        reason = url and unreachable_reason(url, timeout)
        if not reason:
            continue
        file = osp.basename(urllib.parse.urlparse(url).path)
        shown = name if name == url else f"{name} ({url})"
        line = (f"{where}={shown!r} cannot be downloaded: {reason}. Download the file where "
                f"there is network and pass the local path: --cfg-options {where}=/path/{file} "
                f"(or copy it to {cached_path(url)}, where mmengine looks first)")
        if where != "load_from" and plain.get("load_from"):
            parent = where.rsplit(".", 1)[0]
            line += (f"; with load_from set these weights are overwritten anyway: "
                     f"--cfg-options {parent}=None")
        problems.append(line)
    return problems


# ----------------------------------------------------------------------------- mmdet 2 names
def _transform_class(type_name: str, default_scope: str):
    from cplugins.spec import SCOPE_PACKAGES

    scope, short = _short(type_name)
    package = SCOPE_PACKAGES.get(scope or default_scope)
    if package is None:
        return None
    try:
        registry = importlib.import_module(f"{package}.registry").TRANSFORMS
        return registry.get(type_name if scope else short)
    except (ImportError, AttributeError, KeyError):
        return None


def _arguments(cls) -> tuple[set[str], bool] | None:
    """(names ``cls(...)`` takes, whether it takes ``**kwargs``); None when unknown."""
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return None
    names = {p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    return names, any(p.kind is p.VAR_KEYWORD for p in parameters)


def _normalises(data_preprocessor: Any) -> bool:
    return isinstance(data_preprocessor, Mapping) and (
        data_preprocessor.get("mean") is not None or data_preprocessor.get("std") is not None)


def mmdet2_names(cfg: Any, purpose: str = "train") -> tuple[list[str], list[str]]:
    """Errors and warnings (one line each): mmdet 2 names in the config that mmdet 3
    (mmengine) does not take, arguments a pipeline transform does not take, transforms that
    change nothing (see the module doc)."""
    plain = _plain(cfg)
    problems, warnings = [], []
    for key, new in MMDET2_KEYS.items():  # mmengine ignores them in any scope
        if key not in plain or (key == "optimizer" and plain["optimizer"] == (
                plain.get("optim_wrapper") or {}).get("optimizer")):
            continue  # optim_wrapper = dict(optimizer=optimizer): a variable, used
        warnings.append(f"{key}: an mmcv 1 (mmdet 2) key that mmengine ignores; use {new}")
    default_scope = plain.get("default_scope") or "mmdet"
    mmdet = default_scope == "mmdet"  # the mmdet 2 names: in mmdet configs only
    normalising = _normalises((plain.get("model") or {}).get("data_preprocessor"))
    seen = set()  # the same transform under several keys (train_pipeline, the dataloader)
    for where, node, in_pipeline in _typed(_sections(plain, purpose), ""):
        if not in_pipeline or repr(node) in seen:
            continue
        seen.add(repr(node))
        type_name = node["type"]
        short = _short(type_name)[1]
        cls = _transform_class(type_name, default_scope)
        module = getattr(cls, "__module__", "")
        if not mmdet:
            pass  # only the arguments are checked
        elif cls is None and short in MMDET2_TRANSFORMS:
            problems.append(f"{where}: type={type_name!r} is an mmdet 2 transform that "
                            f"mmdet 3 removed; use {MMDET2_TRANSFORMS[short]}")
        elif short in NO_OPS and module.startswith("mmdet."):
            warnings.append(f"{where}: type={type_name!r} changes nothing: {NO_OPS[short]}")
            continue
        elif short in MMDET2_SILENT and module.startswith(("mmdet.", "mmcv.")):
            problems.append(f"{where}: type={type_name!r} is an mmdet 2 transform; in mmdet 3 "
                            f"use {MMDET2_SILENT[short]}")
        elif short == "Normalize" and normalising and module.startswith(("mmcv.", "mmdet.")):
            problems.append(f"{where}: type={type_name!r} normalises the image a second time "
                            "(model.data_preprocessor has mean/std): mmdet 3 normalises in "
                            "model.data_preprocessor only (mean, std, bgr_to_rgb=to_rgb); "
                            "drop Normalize from the pipeline")
            continue
        if mmdet and short in MMDET2_SUCCESSORS and cls is None:
            short = MMDET2_SUCCESSORS[short]  # its arguments too, all in one go
            cls = _transform_class(short, "mmdet")
        arguments = _arguments(cls) if cls is not None else None
        if arguments is None or arguments[1]:
            continue  # unknown types: the registry's KeyError is explained at build
        names = arguments[0]
        for argument in node:
            if argument == "type" or argument.startswith("_") or argument in names:
                continue
            hint = mmdet and (MMDET2_ARGUMENTS.get((short, argument))
                              or MMDET2_ARGUMENTS.get(("*", argument)))
            problems.append(
                f"{where}: {short} takes no argument {argument!r}"
                + (f" in mmdet 3 (an mmdet 2 argument): {hint}" if hint else "")
                + f"; it takes: {', '.join(sorted(names))}")
    return problems, warnings


#: Python's message, or mmengine's (older versions) around it
# ----------------------------------------------------------------------------- evaluators
#: evaluators that take the ground truth from the data samples when they have no ann_file
_GT_FROM_SAMPLES = ("CocoMetric",)


def _evaluators(evaluator: Any) -> list:
    if isinstance(evaluator, Mapping) and "metrics" in evaluator:  # mmengine's Evaluator
        evaluator = evaluator["metrics"]
    return [e for e in (evaluator if isinstance(evaluator, (list, tuple)) else [evaluator])
            if isinstance(e, Mapping)]


def ground_truth_not_packed(cfg: Any, purpose: str = "train") -> list[str]:
    """One line per ``CocoMetric`` without ``ann_file`` whose dataloader's ``PackDetInputs``
    does not pack ``instances``: the metric reads the ground truth there and would fail at
    the first validation, after a whole epoch of training."""
    sections, problems = _sections(_plain(cfg), purpose), []
    for split in ("val", "test"):
        loader = sections.get(f"{split}_dataloader")
        dataset = loader.get("dataset") if isinstance(loader, Mapping) else None
        while isinstance(dataset, Mapping) and isinstance(dataset.get("dataset"), Mapping):
            dataset = dataset["dataset"]  # wrappers
        if not isinstance(dataset, Mapping):
            continue
        for evaluator in _evaluators(sections.get(f"{split}_evaluator")):
            if (_short(str(evaluator.get("type", "")))[1] not in _GT_FROM_SAMPLES
                    or evaluator.get("ann_file")):
                continue
            for index, transform in enumerate(dataset.get("pipeline") or []):
                if not (isinstance(transform, Mapping)
                        and _short(str(transform.get("type", "")))[1] == "PackDetInputs"):
                    continue
                keys = transform.get("meta_keys")
                if keys is None or "instances" not in keys:
                    problems.append(
                        f"{split}_evaluator: {evaluator['type']} without ann_file reads the "
                        f"ground truth from the data samples, but {split}_dataloader.dataset"
                        f".pipeline[{index}] (PackDetInputs) does not pack it: add 'instances' "
                        f"to its meta_keys (now: {', '.join(keys) if keys else 'the default'}),"
                        " or give the metric an ann_file")
    return problems


# ----------------------------------------------------------------------------- all together
def check_before_build(cfg: Any, purpose: str = "train", load_from: Any = "config",
                       checkpoints: bool = True) -> list[str]:
    """Raise :class:`PreflightError` listing (one line each) what :func:`mmdet2_names`,
    :func:`missing_packages` and :func:`unreachable_checkpoints` find; returns the warnings.

    ``purpose``: ``'train'`` or ``'test'`` (which config sections the run builds);
    ``load_from``: see :func:`unreachable_checkpoints`; ``checkpoints=False`` skips the
    download check (e.g. when the caller checked the checkpoints already).
    """
    problems, warnings = mmdet2_names(cfg, purpose)
    problems += missing_packages(cfg, purpose)
    problems += ground_truth_not_packed(cfg, purpose)
    if checkpoints:
        problems += unreachable_checkpoints(cfg, purpose, load_from)
    if problems:  # the warnings too: fixing the errors alone would not be enough
        raise PreflightError("\n".join(["\nerror: ".join(problems),
                                         *(f"warning: {w}" for w in warnings)]))
    return warnings
