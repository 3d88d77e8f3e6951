"""Render a template: validated hyperparameters -> a standalone mmengine config.

Rendering validates every hyperparameter first (all problems reported together, nothing built),
loads the template's base config (``mmdet::`` ... or a file), lets the template's render function
edit it, points the dataloaders at ``--data`` or the synthetic set, and adds ``custom_imports``
for the plugins the config needs. The result is the fully merged config: its text
(:func:`render_text`) has no ``_base_`` and runs with stock mmengine tools. Rendering is pure:
the same inputs give the same text.
"""
from __future__ import annotations

import copy
import importlib
import math
import os
import os.path as osp
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from cplugins.data.layouts import DataInfo, resolve_data
from cplugins.templates.catalog import get_template
from cplugins.templates.model import Template, TemplateError, parse_assignments
from cplugins.training.prepare import RUNTIME_IMPORT
from cplugins.training.weights import is_none

if TYPE_CHECKING:
    from mmengine.config import Config

#: records each training run's experiment id (cplugins.templates.experiment_hook)
EXPERIMENT_HOOK = "ExperimentRecordHook"
#: the built-in templates' base configs (package data of cplugins); relative bases are here
TEMPLATE_CONFIGS = osp.join(osp.dirname(osp.abspath(__file__)), "configs")
#: top-level keys a rendered (non-barebones) config keeps; the base's helper variables
#: (``img_scale``, ``max_epochs``, ``train_pipeline``, ...) would be stale after rendering
RUNNER_KEYS = frozenset({
    "model", "data_preprocessor", "train_dataloader", "val_dataloader", "test_dataloader",
    "train_cfg", "val_cfg", "test_cfg", "optim_wrapper", "param_scheduler", "val_evaluator",
    "test_evaluator", "default_hooks", "custom_hooks", "default_scope", "env_cfg",
    "log_processor", "log_level", "visualizer", "load_from", "resume", "randomness",
    "auto_scale_lr", "custom_imports", "launcher", "work_dir", "synthetic_data", "template",
})


@dataclass
class RenderContext:
    """What a template's render function gets: it edits ``cfg`` in place."""

    template: Template
    hp: dict[str, Any]
    data: DataInfo | None
    cfg: Config

    def load(self, base: str) -> Config:
        """Another config (e.g. a variant's base), fully merged."""
        return load_config(base)


def base_path(base: str) -> str:
    """The file of ``base``: ``scope::path`` in an installed OpenMMLab package, an absolute
    path, or a file name in :data:`TEMPLATE_CONFIGS` (shipped in the cplugins wheel)."""
    if "::" in base:
        from mmengine.config.utils import _get_package_and_cfg_path
        from mmengine.utils import get_installed_path

        package, relative = _get_package_and_cfg_path(base)
        path = osp.join(get_installed_path(package), ".mim", "configs", relative)
    elif osp.isabs(base):
        path = base
    else:
        path = osp.join(TEMPLATE_CONFIGS, base)
    if not osp.isfile(path):
        raise TemplateError(f"base config {base!r} not found (looked at {path})")
    return path


@lru_cache(maxsize=64)
def _load_cached(path: str, mtime: float) -> dict:
    from mmengine.config import Config

    return Config.fromfile(path, import_custom_modules=False).to_dict()


def load_config(base: str) -> Config:
    """A fresh, fully merged copy of ``base`` (parsed once per process and file version)."""
    from mmengine.config import Config

    path = base_path(base)
    return Config(copy.deepcopy(_load_cached(path, osp.getmtime(path))), filename=path)


def parse_options(options: Sequence[str] | Mapping[str, Any] | None) -> dict[str, Any]:
    """``["a.b=1", "c=[1,2]"]`` (``--cfg-options`` syntax) or a dict -> a dict to merge."""
    if not options:
        return {}
    if isinstance(options, Mapping):
        return dict(options)
    import argparse

    from mmengine.config import DictAction

    for option in options:
        if "=" not in option:
            raise TemplateError(f"--cfg-options {option!r}: must look like KEY=VALUE")
    namespace = argparse.Namespace()
    DictAction(option_strings=[], dest="cfg_options")(None, namespace, list(options))
    return namespace.cfg_options


def render(name: str | Template, values: Mapping[str, Any] | Sequence[str] | None = None, *,
           data: str | os.PathLike | None = None,
           overrides: Sequence[str] | Mapping[str, Any] | None = None,
           task: str | None = None) -> Config:
    """Render template ``name`` with hyperparameter ``values`` into an mmengine ``Config``.

    Args:
        name: a template name (``NAME`` or ``TASK/NAME``) or a :class:`Template`.
        values: ``{"batch_size": 4}`` or ``["batch_size=4"]``; values may be strings.
        data: dataset folder (see :mod:`cplugins.data.layouts`); ``None``: synthetic set.
        overrides: config entries set after rendering (``--cfg-options`` syntax or a dict).
        task: narrows ``name`` when it exists in several tasks.

    Raises:
        TemplateValidationError: every invalid hyperparameter, reported together.
        TemplateError: unknown template, missing base config, bad ``--data``.
    """
    template = name if isinstance(name, Template) else get_template(name, task)
    if values is not None and not isinstance(values, Mapping):
        values = parse_assignments(list(values))
    hp = template.validate(values)
    # a barebones template keeps its config's own data unless --data is given
    info = resolve_data(template.task, data) if template.base or data is not None else None
    options = parse_options(overrides)
    module_name, _, function = template.render.partition(":")
    render_function = getattr(importlib.import_module(module_name), function)
    if template.base:
        cfg = load_config(template.base)
    else:
        from mmengine.config import Config

        cfg = Config({})
    ctx = RenderContext(template, hp, info, cfg)
    render_function(ctx)
    _finalize(ctx, prune=bool(template.base))
    if options:
        ctx.cfg.merge_from_dict(options)
    return ctx.cfg


def _finalize(ctx: RenderContext, prune: bool) -> None:
    cfg, template = ctx.cfg, ctx.template
    data_imports = ctx.data.imports if ctx.data is not None else ()
    # the runtime first: it opts in to the compatibility fixes before a plugin imports mmdet
    imports = list(dict.fromkeys((RUNTIME_IMPORT,
                                  *(cfg.get("custom_imports") or {}).get("imports", []),
                                  *template.plugins, *data_imports)))
    cfg.custom_imports = dict(imports=imports, allow_failed_imports=False)
    cfg.default_scope = template.scope
    eid = ctx.hp.get("continue_from_eid", "")
    if eid and not is_none(eid):
        from cplugins.templates.experiments import checkpoint_of

        cfg.load_from = checkpoint_of(eid)
    from cplugins.training.setup import add_custom_hook, add_training_safeguards

    add_custom_hook(cfg, EXPERIMENT_HOOK)  # every training run gets an experiment id
    # NaN guard, atomic checkpoints, random states: for a stock Runner too (tools/train.py
    # finds them present and adds nothing)

    add_training_safeguards(cfg)
    source = ctx.data.source if ctx.data is not None else "config"
    cfg.template = dict(name=template.qualified_name, data=source,
                        hyperparameters={hp.name: ctx.hp[hp.name]
                                         for hp in template.hyperparameters})
    content = cfg.to_dict()
    if ctx.data is not None:
        content.pop("synthetic_data", None)
        if ctx.data.synthetic is not None:
            content["synthetic_data"] = dict(ctx.data.synthetic)
    if prune:
        content = {k: v for k, v in content.items() if k in RUNNER_KEYS}
    check_rendered(content)
    from mmengine.config import Config

    # the work dir's config copy and the experiment name follow the template (a barebones
    # template: the user's file), not the base config it started from
    filename = cfg.filename if not prune and cfg.filename else template_stub(template)
    ctx.cfg = Config(content, filename=filename)


def template_stub(template: Template) -> str:
    """An existing file named after ``template`` (``.../detection/NAME.py``), for the rendered
    ``Config.filename``: mmengine names the work dir's config copy and the experiment after
    it, and code that rebuilds a ``Config(..., filename=cfg.filename)`` reads it."""
    text = (f"# Rendered from template {template.qualified_name}: the full config is the one a "
            "run dumps into its work dir (or `cplugins render`).\n")
    for cache in (os.environ.get("XDG_CACHE_HOME") or osp.expanduser("~/.cache"),
                  tempfile.gettempdir()):
        path = osp.join(cache, "cplugins", "templates", template.task, f"{template.name}.py")
        try:
            if not osp.isfile(path):
                os.makedirs(osp.dirname(path), exist_ok=True)
                with tempfile.NamedTemporaryFile("w", dir=osp.dirname(path), suffix=".py",
                                                 delete=False) as tmp:
                    tmp.write(text)
                os.replace(tmp.name, path)
            return path
        except OSError:
            continue
    raise TemplateError("cannot write the template's config stub under ~/.cache or the temp "
                        "folder")


def _nodes(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """``(path, value)`` of ``node`` and of everything inside it (``a.b[0].c``)."""
    yield path, node
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _nodes(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from _nodes(value, f"{path}[{index}]")


def check_rendered(content: Mapping[str, Any]) -> None:
    """Refuse a rendered config that cannot load or silently trains the wrong thing.

    * a number that is not finite (``lr=inf`` is written as ``inf``, which no config loads);
    * an ``OHEMLoss`` without ``use_sigmoid=True``: mmdet heads read ``use_sigmoid`` from the
      config; without it the head has ``num_classes + 1`` softmax outputs and the loss would
      count the background column as a class (every background anchor a positive).
    """
    for path, value in _nodes(content):
        if isinstance(value, float) and not math.isfinite(value):
            raise TemplateError(f"the rendered config would have {path}={value}, not a finite "
                                "number; lower the hyperparameters it is computed from")
        if (isinstance(value, Mapping) and value.get("type") == "OHEMLoss"
                and value.get("use_sigmoid") is not True):
            raise TemplateError(
                f"{path}: OHEMLoss needs use_sigmoid=True in the config (mmdet heads read it "
                "there to give num_classes sigmoid outputs; without it they add a background "
                "output that OHEMLoss would count as a class)")


def render_text(name: str | Template, values: Mapping[str, Any] | Sequence[str] | None = None,
                **kwargs: Any) -> str:
    """The rendered config as Python source (standalone: no ``_base_``)."""
    return config_text(render(name, values, **kwargs))


def config_text(cfg: Config) -> str:
    header = ""
    record = cfg.get("template")
    if record:
        header = (f"# Rendered by `cplugins render` from template {record['name']}; standalone "
                  f"(no _base_).\n# Runs with tools/train.py or a stock mmengine "
                  f"Runner.from_cfg(Config.fromfile(this file)).\n")
    return header + cfg.pretty_text


def write_config(cfg: Config, path: str | os.PathLike) -> str:
    """Write ``cfg`` as a standalone Python config; returns the path written."""
    path = os.fspath(path)
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    text = config_text(cfg)
    with tempfile.NamedTemporaryFile("w", dir=folder, suffix=".py", delete=False) as tmp:
        tmp.write(text)
    os.replace(tmp.name, path)
    return path
