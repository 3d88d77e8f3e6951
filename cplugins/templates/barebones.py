"""Barebones templates (MMDetection, MMClassification, MMSegmentation): the user's config.

The user's Python config may inherit from anything mmengine resolves (``mmdet::...``, relative
files, ``_delete_=True``) and, in ``_base_``, from a template: ``'template:NAME'`` or
``'template:NAME?batch_size=4&image_size=512'`` (``TASK/NAME`` where a name exists in several
tasks). Such a base is rendered (with ``--data`` when given) into a temporary file first. With
``--data`` the merged config's datasets, evaluators and ``num_classes`` are pointed at that data;
without it the config's own data is used.
"""
from __future__ import annotations

import ast
import os.path as osp
import re
import tempfile
import urllib.parse
from collections.abc import MutableMapping

from cplugins.data.layouts import DataInfo
from cplugins.templates import common
from cplugins.templates.model import TemplateError, parse_assignments
from cplugins.templates.rendering import RenderContext, base_path, config_text, render

TEMPLATE_PREFIX = "template:"
_PREDEFINED = ("fileDirname", "fileBasename", "fileBasenameNoExtension", "fileExtname")


_BASE_ALLOWED = ("allowed: a path relative to the config's folder, an absolute path, "
                 "'mmdet::PATH' (mmpretrain::, mmseg::) or 'template:NAME?hp=value&...'")
#: repository checkouts the platform documents name (``/mmdetection/configs/...``) -> scope
_CHECKOUTS = {"mmdetection": "mmdet", "mmpretrain": "mmpretrain",
              "mmclassification": "mmpretrain", "mmsegmentation": "mmseg"}


def _template_values(value: str, query: str) -> dict[str, str]:
    """The hyperparameters of ``template:NAME?query``; a name given twice is an error."""
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    return parse_assignments([f"{k}={v}" for k, v in pairs], option=f"_base_ {value!r}:")


def _missing_base(value: str, target: str) -> TemplateError:
    hint = ""
    match = re.search(r"(?:^|/)(" + "|".join(_CHECKOUTS) + r")/configs/(.+)$", value)
    if match:
        hint = f" (the installed configs: '{_CHECKOUTS[match.group(1)]}::{match.group(2)}')"
    return TemplateError(f"_base_ {value!r}: no such file (looked at {target}){hint}; "
                         f"{_BASE_ALLOWED}")


def _base_target(value: str, folder: str, tmp: str, data: str | None,
                 index: int) -> tuple[str, list[str]]:
    """Where one ``_base_`` entry of the user's file points once copied to ``tmp``, and the
    imports (``custom_imports``) a template base needs."""
    if value.startswith(TEMPLATE_PREFIX):
        spec = value[len(TEMPLATE_PREFIX):]
        name, _, query = spec.partition("?")
        values = _template_values(value, query)
        from cplugins.templates.catalog import get_template

        template = get_template(name.strip())
        if not template.base:
            raise TemplateError(f"_base_ {value!r}: {template.name} is a barebones template; "
                                "inherit from a template with a model")
        path = osp.join(tmp, f"_template_{index}_{template.name}.py")
        cfg = render(template, values, data=data)
        with open(path, "w") as f:
            f.write(config_text(cfg))
        return path, list(cfg.custom_imports["imports"])
    if "::" in value:
        try:
            base_path(value)
        except Exception as exc:  # unknown package or file: one line, what is allowed
            reason = str(exc) if isinstance(exc, TemplateError) else f"{type(exc).__name__}: {exc}"
            raise TemplateError(f"_base_ {value!r}: {reason}; {_BASE_ALLOWED}") from None
        return value, []
    target = value if osp.isabs(value) else osp.normpath(osp.join(folder, value))
    if not osp.isfile(target):
        raise _missing_base(value, target)
    return target, []


def materialize(path: str, tmp: str, data: str | None) -> tuple[str, list[str]]:
    """Copy the user's config into ``tmp`` with every ``_base_`` resolved; returns the copy
    and the imports its template bases need."""
    with open(path, "rb") as f:
        source = f.read()
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as exc:
        raise TemplateError(f"config={path!r}: not valid Python: {exc}") from None
    folder = osp.dirname(path)
    line_starts = [0]
    for line in source.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))
    edits: list[tuple[int, int, bytes]] = []
    imports: list[str] = []
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "_base_" for t in node.targets)):
            continue
        for const in ast.walk(node.value):
            if isinstance(const, ast.Constant) and isinstance(const.value, str):
                target, needed = _base_target(const.value, folder, tmp, data, len(edits))
                imports += [i for i in needed if i not in imports]
                start = line_starts[const.lineno - 1] + const.col_offset
                end = line_starts[const.end_lineno - 1] + const.end_col_offset
                edits.append((start, end, repr(target).encode()))
    for start, end, text in sorted(edits, reverse=True):
        source = source[:start] + text + source[end:]
    text = source.decode()
    name = osp.basename(path)
    values = {"fileDirname": folder, "fileBasename": name,
              "fileBasenameNoExtension": osp.splitext(name)[0],
              "fileExtname": osp.splitext(name)[1]}
    for key in _PREDEFINED:
        text = re.sub(r"\{\{\s*" + key + r"\s*\}\}", values[key].replace("\\", "/"), text)
    copy_path = osp.join(tmp, name)
    with open(copy_path, "w") as f:
        f.write(text)
    return copy_path, imports


def _dataloaders(cfg: MutableMapping) -> list[tuple[str, MutableMapping]]:
    found = []
    for key, split in (("train_dataloader", "train"), ("val_dataloader", "val"),
                       ("test_dataloader", "val")):
        loader = cfg.get(key)
        if isinstance(loader, MutableMapping) and isinstance(loader.get("dataset"),
                                                             MutableMapping):
            found.append((split, loader))
    return found


def _limit_topk(node: MutableMapping, num_classes: int) -> None:
    topk = node.get("topk")
    if isinstance(topk, (list, tuple)):
        node["topk"] = tuple(k for k in topk if k <= num_classes) or (1,)
    elif isinstance(topk, int) and topk > num_classes:
        node["topk"] = 1


def apply_data(cfg: MutableMapping, data: DataInfo) -> None:
    """Point every dataset, evaluator and ``num_classes`` of ``cfg`` at ``data``."""
    loaders = _dataloaders(cfg)
    if not loaders:
        raise TemplateError("--data: the config has no train/val/test dataloader to point at it")
    for split, loader in loaders:
        dataset = common.innermost_dataset(loader["dataset"])
        pipeline = dataset.get("pipeline", [])
        new = data.dataset(split, pipeline)
        dataset.clear()
        dataset.update(new)
        if data.task == "segmentation":
            for transform in dataset["pipeline"]:
                if transform.get("type") in ("LoadAnnotations", "LoadAnnotationsFromDeepLake"):
                    transform["reduce_zero_label"] = False
    for key in ("val_evaluator", "test_evaluator"):
        evaluators = cfg.get(key)
        for evaluator in evaluators if isinstance(evaluators, list) else [evaluators]:
            if isinstance(evaluator, MutableMapping):
                if data.task == "detection" and "ann_file" in evaluator:
                    evaluator["ann_file"] = data.coco_ann_file("val")
                _limit_topk(evaluator, data.num_classes)
    common.set_num_classes(cfg["model"], data.num_classes)
    for node in common.walk(cfg["model"]):
        _limit_topk(node, data.num_classes)
    preprocessor = cfg.get("data_preprocessor")
    if isinstance(preprocessor, MutableMapping) and "num_classes" in preprocessor:
        preprocessor["num_classes"] = data.num_classes


def render_barebones(ctx: RenderContext) -> None:
    """Load the user's config (``config`` hyperparameter), resolve template bases, add data."""
    from mmengine.config import Config

    path = osp.abspath(osp.expanduser(ctx.hp["config"]))
    data = ctx.data.source if ctx.data is not None else None
    with tempfile.TemporaryDirectory(prefix="cplugins-barebones-") as tmp:
        copy_path, imports = materialize(path, tmp, data)
        try:
            merged = Config.fromfile(copy_path, import_custom_modules=False).to_dict()
        except Exception as exc:  # the user's Python: one line saying what is wrong
            reason = f"{type(exc).__name__}: {exc}".replace(copy_path, path)
            raise TemplateError(f"config={ctx.hp['config']!r} cannot be loaded: "
                                f"{reason}") from None
    # the user's custom_imports replace those of a template base (mmengine merges lists by
    # replacing them): keep the template's plugins, or a stock Runner cannot build its model
    own = list((merged.get("custom_imports") or {}).get("imports", []))
    if imports:
        merged["custom_imports"] = dict(merged.get("custom_imports") or {},
                                        imports=own + [i for i in imports if i not in own])
    cfg = Config(merged, filename=path)  # the copy is gone: name the user's file
    scope = cfg.get("default_scope")
    if scope is not None and scope != ctx.template.scope:
        raise TemplateError(
            f"config={ctx.hp['config']!r} is an {scope} config (default_scope={scope!r}), but "
            f"template {ctx.template.name} trains {ctx.template.task} ({ctx.template.scope}); "
            f"use the barebones template of that task")
    if "model" not in cfg:
        raise TemplateError(f"config={ctx.hp['config']!r} defines no model")
    if ctx.data is not None:
        apply_data(cfg, ctx.data)
    ctx.cfg = cfg

