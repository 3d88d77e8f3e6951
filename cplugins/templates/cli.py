"""``cplugins templates [show NAME]`` and ``cplugins render NAME --set k=v ... -o FILE``.

Listing and showing import no torch; ``render`` imports mmengine (not torch) to merge configs.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import warnings

from cplugins.manager import CPluginsWarning
from cplugins.templates.catalog import Catalog, TemplateEntry, load_catalog
from cplugins.templates.model import TASKS, Hyperparameter, Template, TemplateError, format_value

EPILOG = """examples:
  cplugins templates
  cplugins templates show MMDetection_YOLOX
  cplugins render MMDetection_YOLOX --set model_size=tiny batch_size=4 -o yolox.py
  cplugins render classification/Clarifai_InceptionV2 --set logreg=0 --data my_images/ -o c.py
  cplugins render MMDetection --set config=my_config.py -o merged.py
"""


def _catalog() -> Catalog:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CPluginsWarning)
        catalog = load_catalog()
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    return catalog


def _plugins_text(template: Template) -> str:
    if not template.plugins:
        return "-"
    return ", ".join(p if importlib.util.find_spec(p) is not None else f"{p} (NOT INSTALLED)"
                     for p in template.plugins)


def _source(entry: TemplateEntry) -> str:
    return "built-in" if entry.builtin else f"{entry.plugin} ({entry.distribution})"


def format_listing(catalog: Catalog, task: str | None = None) -> str:
    """One row per template: name, task, base config, plugins it needs, who provides it."""
    entries = [e for e in catalog.entries if task is None or e.template.task == task]
    rows = [("NAME", "TASK", "BASE", "PLUGINS", "SOURCE")]
    for entry in entries:
        t = entry.template
        rows.append((t.name, t.task, t.base or "(your config: --set config=FILE)",
                     _plugins_text(t), _source(entry)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4] for r in rows]
    lines += [f"ERROR: {e}" for e in catalog.errors]
    lines += [f"CONFLICT: {c}" for c in catalog.conflicts.values()]
    lines.append("\n`cplugins templates show NAME` lists a template's hyperparameters; "
                 "names in several tasks take TASK/NAME.")
    return "\n".join(lines)


def search_text(hp: Hyperparameter) -> str:
    """How ``cplugins tune`` searches ``hp``: ``tuned, log 1e-05..0.001``, ``-``..."""
    parts = ["tuned"] if hp.tunable else []
    if hp.search_range:
        low, high = (format_value(v) for v in hp.search_range)
        parts.append(f"{'log ' if hp.log else ''}{low}..{high}")
    elif hp.log:
        parts.append("log")
    if hp.search_choices:
        parts.append(" | ".join(format_value(v) for v in hp.search_choices))
    return ", ".join(parts) or "-"


def format_template(entry: TemplateEntry) -> str:
    """A template's description, base, plugins and hyperparameter table."""
    t = entry.template
    lines = [f"{t.name} ({t.task}): {t.description}",
             f"  base:    {t.base or '(your config file: --set config=FILE)'}",
             f"  plugins: {_plugins_text(t)}",
             f"  source:  {_source(entry)}", ""]
    rows = [("HYPERPARAMETER", "TYPE", "DEFAULT", "ALLOWED", "SEARCH", "DESCRIPTION")]
    for hp in t.hyperparameters:
        default = "(required)" if hp.required else format_value(hp.default)
        rows.append((hp.name, hp.type_label, default, hp.allowed(), search_text(hp),
                     hp.description))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r[:5], widths)) + "  " + r[5] for r in rows]
    if t.notes:
        lines += ["", f"Notes: {t.notes}"]
    lines += ["", f"Render: cplugins render {t.qualified_name} --set NAME=VALUE ... -o config.py"]
    return "\n".join(lines)


def _entry_json(entry: TemplateEntry, full: bool) -> dict:
    t = entry.template
    record = {"name": t.name, "task": t.task, "qualified_name": t.qualified_name,
              "base": t.base, "plugins": list(t.plugins), "description": t.description,
              "source": _source(entry)}
    if full:
        record["hyperparameters"] = [hp.to_dict() for hp in t.hyperparameters]
        record["notes"] = t.notes
    return record


def cmd_templates(args: argparse.Namespace) -> int:
    catalog = _catalog()
    if args.action == "show":
        if not args.name:
            print("error: cplugins templates show NAME: give a template name", file=sys.stderr)
            return 2
        try:
            template = catalog.find(args.name, args.task)
        except TemplateError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        entry = next(e for e in catalog.entries if e.template is template)
        print(json.dumps(_entry_json(entry, True), indent=2) if args.json
              else format_template(entry))
        return 0
    if args.json:
        entries = [e for e in catalog.entries if args.task is None or e.template.task == args.task]
        print(json.dumps({"templates": [_entry_json(e, False) for e in entries],
                          "errors": catalog.errors,
                          "conflicts": list(catalog.conflicts.values())}, indent=2))
    else:
        print(format_listing(catalog, args.task))
    return 1 if catalog.errors or catalog.conflicts else 0


def cmd_render(args: argparse.Namespace) -> int:
    from cplugins.templates.model import parse_assignments
    from cplugins.templates.rendering import config_text, render, write_config

    try:
        values = parse_assignments(args.set)
        cfg = render(args.name, values, data=args.data, overrides=args.cfg_options,
                     task=args.task)
    except TemplateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.output:
        write_config(cfg, args.output)
        print(f"wrote {args.output} ({cfg.template['name']})", file=sys.stderr)
    else:
        sys.stdout.write(config_text(cfg))
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from cplugins.templates.experiments import find_runs, format_runs, runs_root

    runs = find_runs(args.root)
    if args.json:
        print(json.dumps([vars(r) for r in runs], indent=2, default=str))
    elif runs:
        print(format_runs(runs))
    else:
        print(f"no recorded runs under {runs_root(args.root)}/ (training a template records "
              "one in its work dir)", file=sys.stderr)
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add ``templates``, ``render`` and ``runs`` to the ``cplugins`` command line."""
    p_runs = sub.add_parser(
        "runs", help="training runs and their experiment ids (for continue_from_eid)",
        description="List the training runs recorded under a folder (default: work_dirs, or "
                    "CPLUGINS_RUNS_ROOT): experiment id, template, start, last checkpoint. "
                    "A template's continue_from_eid=ID starts from that run's last checkpoint.")
    p_runs.add_argument("--root", help="folder holding the work dirs (default: work_dirs)")
    p_runs.add_argument("--json", action="store_true", help="machine-readable output")
    p_runs.set_defaults(func=cmd_runs)

    p_templates = sub.add_parser(
        "templates", help="training templates: list them, or show one's hyperparameters",
        description="List training templates (built-in and from plugins), or show one.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p_templates.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    p_templates.add_argument("name", nargs="?", help="template name for `show` (or TASK/NAME)")
    p_templates.add_argument("--task", choices=list(TASKS), help="only this task")
    p_templates.add_argument("--json", action="store_true", help="machine-readable output")
    p_templates.set_defaults(func=cmd_templates)

    p_render = sub.add_parser(
        "render", help="write a template as a standalone mmengine config",
        description="Validate hyperparameters and write the template's fully merged config "
                    "(no _base_): tools/train.py and a stock mmengine Runner run it.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p_render.add_argument("name", help="template name (or TASK/NAME)")
    p_render.add_argument("--set", nargs="+", action="extend", default=[], metavar="NAME=VALUE",
                          help="hyperparameters, e.g. batch_size=4 image_size=512,640")
    p_render.add_argument("--data", help="dataset folder (COCO / image folders / img_dir+ann_dir"
                                         " / train+val Deep Lake datasets); default: the "
                                         "task's synthetic set")
    p_render.add_argument("--task", choices=list(TASKS), help="for names in several tasks")
    p_render.add_argument("--cfg-options", nargs="+", action="extend", default=[],
                          metavar="KEY=VALUE", help="config entries set after rendering")
    p_render.add_argument("-o", "--output", help="file to write (default: stdout)")
    p_render.set_defaults(func=cmd_render)
