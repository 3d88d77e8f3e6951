"""Hook module of cplugins' benchmark part (``cplugins[bench]``): the ``cplugins bench``
command (torch is imported only when cases run)."""
from __future__ import annotations

import argparse

from cplugins.hookspecs import hookimpl


def _run(args: argparse.Namespace) -> int:
    from cplugins.bench.cli import run_command

    return run_command(args)


@hookimpl
def cplugins_commands(subparsers) -> None:
    from cplugins.bench.cli import EPILOG, add_arguments

    parser = subparsers.add_parser(
        "bench", help="time plugin modules against their baselines (CPU or GPU)",
        description="Benchmark forward / forward+backward (or a detector's train step and "
                    "inference) against a baseline, with FLOPs, memory and a JSON record.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.set_defaults(func=_run, extra="bench")
