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

from cplugins.templates import common
from cplugins.templates.data import DataInfo
from cplugins.templates.model import TemplateError
from cplugins.templates.rendering import RenderContext, render_text

TEMPLATE_PREFIX = "template:"
_PREDEFINED = ("fileDirname", "fileBasename", "fileBasenameNoExtension", "fileExtname")


def _base_target(value: str, folder: str, tmp: str, data: str | None, index: int) -> str:
    """Where one ``_base_`` entry of the user's file points once copied to ``tmp``."""
    if value.startswith(TEMPLATE_PREFIX):
        spec = value[len(TEMPLATE_PREFIX):]
        name, _, query = spec.partition("?")
        values = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        from cplugins.templates.catalog import get_template

        template = get_template(name.strip())
        if not template.base:
            raise TemplateError(f"_base_ {value!r}: {template.name} is a barebones template; "
                                "inherit from a template with a model")
        path = osp.join(tmp, f"_template_{index}_{template.name}.py")
        with open(path, "w") as f:
            f.write(render_text(template, values, data=data))
        return path
    if "::" in value or osp.isabs(value):
        return value
    return osp.normpath(osp.join(folder, value))


def materialize(path: str, tmp: str, data: str | None) -> str:
    """Copy the user's config into ``tmp`` with every ``_base_`` resolved; returns the copy."""
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
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "_base_" for t in node.targets)):
            continue
        for const in ast.walk(node.value):
            if isinstance(const, ast.Constant) and isinstance(const.value, str):
                target = _base_target(const.value, folder, tmp, data, len(edits))
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
    return copy_path


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
            for transform in pipeline:
                if transform.get("type") == "LoadAnnotations":
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
        copy_path = materialize(path, tmp, data)
        merged = Config.fromfile(copy_path, import_custom_modules=False).to_dict()
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

