"""Shared set-up of tools/train.py and tools/test.py: templates from the command line; the
config itself is prepared by :func:`cplugins.training.prepare.prepare_for_training`."""
from __future__ import annotations

import os.path as osp

from mmengine.config import Config

import cplugins.all  # noqa: F401  (registers every installed plugin)


def template_config(name: str, sets: list[str], data: str | None = None,
                    config: str | None = None, task: str | None = None) -> Config:
    """Render template ``name`` (``--template``) with ``--set`` values and ``--data``.

    ``config`` (the positional CONFIG) is the user's file of a barebones template. Invalid
    hyperparameters exit with every problem listed; the work dir defaults to work_dirs/NAME.
    """
    import cplugins.templates.runtime  # noqa: F401  (what the config's custom_imports would do)
    from cplugins.templates import TemplateError, get_template, parse_assignments
    from cplugins.templates.rendering import render

    try:
        values = parse_assignments(sets)
        template = get_template(name, task)
        if config is not None:
            if "config" not in {hp.name for hp in template.hyperparameters}:
                raise TemplateError(f"CONFIG {config!r} was given with --template {name}, which "
                                    "takes no config file (only barebones templates do: "
                                    "MMDetection, MMClassification, MMSegmentation)")
            if values.setdefault("config", config) != config:
                raise TemplateError(f"CONFIG {config!r} and --set config={values['config']!r} "
                                    "disagree; give one")
        cfg = render(template, values, data=data)
    except TemplateError as exc:
        raise SystemExit(f"error: {exc}") from None
    cfg.work_dir = osp.join("work_dirs", template.name)
    return cfg
