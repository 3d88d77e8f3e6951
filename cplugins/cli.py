"""The ``cplugins`` command line: ``cplugins list [--activate] [--json]``, ``cplugins lock CKPT``,
``cplugins doctor``, ``cplugins configs [DIST]``, ``cplugins new``, ``cplugins check``; the
optional parts and plugins add theirs (``cplugins_commands`` hook: ``bench``, ``templates``,
``render``, ``runs``, ``tune``, ``data``).

The command is one of cplugins' own entry points: it opts in to the compatibility fixes
(:func:`cplugins.compat.apply`) before anything imports the OpenMMLab stack."""
from __future__ import annotations

import argparse
import json
import sys
import warnings

from cplugins.errors import CPluginsError
from cplugins.manager import ENV_LOAD_PLUGINS, CPluginsWarning, PluginRecord, get_manager


def _record_dict(record: PluginRecord) -> dict:
    return {
        "name": record.name,
        "distribution": record.distribution,
        "version": record.version,
        "builtin": record.builtin,
        "hook_module": record.hook_module,
        "hooks": record.hooks,
        "status": record.status,
        "error": record.error,
        "import_seconds": round(record.import_cost.seconds, 3) if record.import_cost else None,
        "heavy_imports": list(record.import_cost.heavy) if record.import_cost else [],
        "version_problems": [str(p) for p in record.version_problems],
        "modules": [
            {"name": r.spec.name, "target": r.spec.target, "registry": str(r.registry),
             "status": r.status, "reason": r.reason}
            for r in record.registrations
        ],
    }


def _registry_label(registry) -> str:
    return "shared root::" + registry.name if registry.is_root else str(registry)


def format_table(records: list[PluginRecord], conflicts: list[str]) -> str:
    """Human-readable listing: one block per plugin, one line per module and registry."""
    lines = []
    for record in records:
        origin = "built-in" if record.builtin else record.hook_module
        status = record.status if not record.error else f"{record.status}: {record.error}"
        lines.append(f"{record.distribution} {record.version}  [{record.name}, {origin}]  "
                     f"{status}")
        lines.append(f"  hooks: {', '.join(record.hooks) or '-'}")
        if record.import_cost is not None and not record.import_cost.light:
            lines.append(f"  hook module {record.import_cost}: it should import only cplugins")
        for reg in record.registrations:
            note = "" if reg.status == "declared" else f"  ({reg.status}"
            note += f": {reg.reason})" if reg.reason else (")" if note else "")
            lines.append(f"  {reg.spec.name:<24} -> {_registry_label(reg.registry):<24} "
                         f"{reg.spec.target}{note}")
    for conflict in conflicts:
        lines.append(f"CONFLICT: {conflict}")
    return "\n".join(lines)


def cmd_list(args: argparse.Namespace) -> int:
    manager = get_manager()
    error = ""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CPluginsWarning)
        try:
            manager.activate_all() if args.activate else manager.discover()
        except CPluginsError as exc:  # reported in the listing, not as a traceback
            error = str(exc)
    for warning in [*getattr(args, "discovery_warnings", []), *caught]:
        print(f"warning: {warning.message}", file=sys.stderr)
    records = list(manager.records.values())
    found = {(str(r.registry), r.spec.name): r.reason for record in records
             for r in record.registrations if r.status == "conflict"}  # at activation
    conflicts = [c for c in manager.declared_conflicts()
                 if not any(c.startswith(f"{name!r} in {registry}:") for registry, name in found)]
    conflicts += found.values()
    wrong_scopes = _wrong_scopes(records) if args.activate else []
    if args.json:
        print(json.dumps({"plugins": [_record_dict(r) for r in records],
                          "conflicts": conflicts, "wrong_scopes": wrong_scopes,
                          "error": error}, indent=2))
    else:
        print(format_table(records, conflicts))
        for line in wrong_scopes:
            print(f"WRONG SCOPE: {line}")
        if error:
            print(f"error: {error}")
    broken = any(r.status in ("failed", "incompatible") for r in records)
    return 1 if conflicts or broken or error or wrong_scopes else 0


def _wrong_scopes(records: list[PluginRecord]) -> list[str]:
    """Registered modules whose base class belongs to another library than their scope."""
    from cplugins.manager import import_target
    from cplugins.registries import scope_mismatch

    lines = []
    for record in records:
        for reg in record.registrations:
            if reg.status != "registered":
                continue
            mismatch = scope_mismatch(import_target(reg.spec.target), reg.registry)
            if mismatch:
                lines.append(f"{record.label}: {mismatch.message}")
    return lines


def cmd_lock(args: argparse.Namespace) -> int:
    from cplugins.lock import lock_problems, read_lock, requirement_lines

    try:
        lock = read_lock(args.checkpoint)
    except CPluginsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # missing, truncated, not a checkpoint: one line, no traceback
        reason = (str(exc).strip().splitlines() or [""])[0]
        print(f"error: cannot read {args.checkpoint}: {type(exc).__name__}: {reason}",
              file=sys.stderr)
        return 1
    for line in requirement_lines(lock):
        print(line)
    for problem in lock_problems(lock):
        print(f"warning: {problem}", file=sys.stderr)
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from cplugins import compat

    rows = compat.report()
    if args.json:
        print(json.dumps({"fixes": rows}, indent=2))
        return 0
    for row in rows:
        needed = {True: "needed", False: "not needed", None: "library not installed"}.get(
            row["needed"], row["needed"])
        print(f"{row['name']:<24} {needed:<22} {row['state']:<12} {row['problem']}")
    wanted = [r["name"] for r in rows if r["needed"] is True]
    names = f": {', '.join(wanted)}" if wanted else ""
    print(f"this environment needs {len(wanted)} fix(es){names}. The cplugins command, "
          "tools/*.py and configs that import cplugins.templates.runtime apply them; your "
          "own scripts and tests opt in with `import cplugins.compat; "
          "cplugins.compat.apply()` before importing the OpenMMLab stack.")
    return 0


def plugin_configs(only: str | None = None) -> dict[str, list[str]]:
    """Config paths by plugin label (``dist version``) from the ``cplugins_configs`` hook;
    ``only``: a distribution, plugin or package name."""
    manager = get_manager()
    manager.discover()
    found: dict[str, list[str]] = {}
    for record in manager.records.values():
        if record.plugin is None or (only is not None and only not in (
                record.distribution, record.name, record.package)):
            continue
        impls = [i for i in manager.pm.hook.cplugins_configs.get_hookimpls()
                 if i.plugin is record.plugin]
        paths = [str(p) for impl in impls for p in impl.function() or []]
        if paths or only is not None:
            found[record.label] = sorted(paths)
    return found


def cmd_configs(args: argparse.Namespace) -> int:
    import os.path as osp

    found = plugin_configs(args.dist)
    if args.dist is not None and not found:
        known = sorted({r.distribution for r in get_manager().records.values()})
        print(f"error: no installed plugin {args.dist!r}; installed: {', '.join(known)}",
              file=sys.stderr)
        return 1
    if args.path is not None:
        stem = args.path[:-3] if args.path.endswith(".py") else args.path
        hits = [p for paths in found.values() for p in paths
                if osp.splitext(osp.basename(p))[0] == stem]
        if len(hits) != 1:
            names = sorted(osp.splitext(osp.basename(p))[0] for v in found.values() for p in v)
            what = "several plugins ship" if hits else "no plugin ships"
            print(f"error: {what} a config {args.path!r}; configs: {', '.join(names)}",
                  file=sys.stderr)
            return 1
        print(hits[0])
        return 0
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    for label, paths in found.items():
        print(label)
        for path in paths:
            print(f"  {osp.splitext(osp.basename(path))[0]:<56} {path}")
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    from cplugins.scaffold import ScaffoldError, new_project  # copier only when generating

    try:
        path = new_project(args.kind, args.name, args.dir, args.scope)
    except ScaffoldError as exc:
        print(f"cplugins new: {exc}", file=sys.stderr)
        return 2
    print(f"created {path}: pip install {path} && cplugins check {path} && pytest {path}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from cplugins.check.cli import run_command  # torch only when modules are checked

    return run_command(args)


def add_plugin_commands(sub: argparse._SubParsersAction) -> None:
    """The commands of the optional parts (templates, tune, bench, data) and of plugins
    (``cplugins_commands``); one that fails is a warning, not a broken ``cplugins``."""
    manager = get_manager()
    manager.discover()
    for impl in manager.pm.hook.cplugins_commands.get_hookimpls():
        try:
            impl.function(subparsers=sub)
        except Exception as exc:
            warnings.warn(f"cplugins: plugin {impl.plugin_name!r} could not add its commands: "
                          f"{type(exc).__name__}: {exc}", CPluginsWarning, stacklevel=2)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cplugins", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_list = sub.add_parser(
        "list", help="installed plugins, their modules and registries",
        description=f"List plugins. {ENV_LOAD_PLUGINS}=a,b limits which load.")
    p_list.add_argument("--activate", action="store_true",
                        help="also import and register every module (slower; shows failures "
                             "that only happen on import)")
    p_list.add_argument("--json", action="store_true", help="machine-readable output")
    p_list.set_defaults(func=cmd_list)
    p_lock = sub.add_parser(
        "lock", help="the plugin distributions a checkpoint needs, as requirement lines",
        description="Print pip requirement lines for the plugins a checkpoint was trained with "
                    "(its meta['cplugins_lock']), and warn about the ones installed at another "
                    "version or missing.")
    p_lock.add_argument("checkpoint", help="a .pth checkpoint, a work dir's cplugins-lock.json, "
                                           "or the config tools/train.py saved there")
    p_lock.set_defaults(func=cmd_lock)
    p_doctor = sub.add_parser(
        "doctor", help="which compatibility fixes this environment needs, which ran",
        description="For each known breakage of the OpenMMLab stack on a newer torch/numpy: "
                    "whether this environment has it (imports torch to find out) and whether "
                    "the fix ran in this process. Fixes are opt-in: cplugins.compat.apply().")
    p_doctor.add_argument("--json", action="store_true", help="machine-readable output")
    p_doctor.set_defaults(func=cmd_doctor)
    p_configs = sub.add_parser(
        "configs", help="the training configs plugins ship (their model zoos)",
        description="List the configs installed plugins ship (cplugins_configs hook), with their "
                    "paths: give one to a train.py, or name it as a _base_ (see the plugin's "
                    "zoo README).")
    p_configs.add_argument("dist", nargs="?", metavar="DIST",
                           help="only this plugin (distribution, plugin or package name)")
    p_configs.add_argument("--path", metavar="NAME", help="print only the path of config NAME")
    p_configs.add_argument("--json", action="store_true", help="machine-readable output")
    p_configs.set_defaults(func=cmd_configs)
    p_new = sub.add_parser(
        "new", help="generate a plugin distribution (copier template)",
        description="Generate a complete plugin distribution providing one module for mmdet, "
                    "mmpretrain or mmseg: pyproject with the entry point, the light hook "
                    "module, the module, a config that trains it with the library's Runner, a "
                    "benchmark case or check example, a README and tests (cplugins.testing).")
    p_new.add_argument("kind", metavar="KIND", help="backbone, neck, head, loss, dataset, "
                       "hook or transform (of --scope); or cls_head (mmpretrain), decode_head "
                       "(mmseg), bbox_head (mmdet)")
    p_new.add_argument("name", metavar="NAME", help="class name, e.g. MyNeck")
    p_new.add_argument("--scope", help="the library: mmdet (default; head: an RoI box head), "
                       "mmpretrain (head: a classification head) or mmseg (head: a decode "
                       "head); the module registers into SCOPE::model, ::dataset, "
                       "::transform")
    p_new.add_argument("--dir", help="where to create it (new or empty; default ./<name>)")
    p_new.set_defaults(func=cmd_new)
    from cplugins.check.cli import DESCRIPTION as CHECK_DESCRIPTION  # light: no torch
    from cplugins.check.cli import add_arguments as add_check_arguments

    p_check = sub.add_parser("check", help="check plugin distributions against the contract",
                             description=CHECK_DESCRIPTION,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    add_check_arguments(p_check)
    p_check.set_defaults(func=cmd_check)
    add_plugin_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from cplugins import compat

    compat.apply()  # the command is cplugins' own entry point: it opts in (nothing imported yet)
    with warnings.catch_warnings(record=True) as caught:  # discovery's, shown once below
        warnings.simplefilter("always", CPluginsWarning)
        parser = build_parser()
    args = parser.parse_args(argv)
    if args.func is cmd_list:
        args.discovery_warnings = caught
    else:
        for warning in caught:
            warnings.showwarning(warning.message, warning.category, warning.filename,
                                 warning.lineno)
    try:
        return args.func(args)
    except ModuleNotFoundError as exc:
        extra = getattr(args, "extra", None)
        if extra is None or (exc.name or "").split(".")[0].startswith("cplugins"):
            raise
        print(f"error: `cplugins {args.command}` needs {exc.name!r}, which is not installed: "
              f"pip install 'cplugins[{extra}]'", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
