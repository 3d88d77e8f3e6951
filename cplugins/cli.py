"""The ``cplugins`` command line: ``cplugins list [--activate] [--json]``, ``cplugins bench``."""
from __future__ import annotations

import argparse
import json
import sys
import warnings

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
        for reg in record.registrations:
            note = "" if reg.status == "declared" else f"  ({reg.status}"
            note += f": {reg.reason})" if reg.reason else (")" if note else "")
            lines.append(f"  {reg.spec.name:<24} -> {_registry_label(reg.registry):<24}"
                         f"{reg.spec.target}{note}")
    for conflict in conflicts:
        lines.append(f"CONFLICT: {conflict}")
    return "\n".join(lines)


def cmd_list(args: argparse.Namespace) -> int:
    manager = get_manager()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CPluginsWarning)
        records = manager.activate_all() if args.activate else manager.discover()
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    conflicts = manager.declared_conflicts()
    if args.json:
        print(json.dumps({"plugins": [_record_dict(r) for r in records],
                          "conflicts": conflicts}, indent=2))
    else:
        print(format_table(records, conflicts))
    return 1 if conflicts or any(r.status == "failed" for r in records) else 0


def cmd_bench(args: argparse.Namespace) -> int:
    from cplugins.bench.cli import run_command  # torch is imported only when cases run

    return run_command(args)


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
    from cplugins.bench.cli import EPILOG, add_arguments  # light: no torch

    p_bench = sub.add_parser(
        "bench", help="time plugin modules against their baselines (CPU or GPU)",
        description="Benchmark forward / forward+backward (or a detector's train step and "
                    "inference) against a baseline, with FLOPs, memory and a JSON record.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p_bench)
    p_bench.set_defaults(func=cmd_bench)
    from cplugins.templates.cli import add_parsers as add_template_parsers  # light: no torch

    add_template_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
