"""``cplugins check [DIST|PATH ...] [--json]``: one line per check with its fix; exit 1 when
any check fails (for CI)."""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import warnings

DESCRIPTION = __doc__ + """
DIST is an installed distribution; PATH a folder with a pyproject.toml whose distribution is
installed (pip install PATH, or -e PATH; a stale install is reported). No argument: every
installed plugin distribution. Model modules are built from their example config (the
cplugins_examples hook, else their benchmark case) and run forward/backward at small sizes."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("targets", nargs="*", metavar="DIST|PATH",
                        help="installed distribution names or source folders")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run_command(args: argparse.Namespace) -> int:
    from cplugins.check.contract import check_distribution
    from cplugins.check.target import CheckTargetError, resolve
    from cplugins.manager import CPluginsWarning

    results = []
    try:
        for argument in args.targets or [None]:
            distributions, source = resolve(argument)
            results += source
            for distribution in distributions:
                # stdout stays for the report (--json: nothing but JSON)
                with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
                    # the checks report what the warnings would say, with the fix
                    warnings.simplefilter("ignore", CPluginsWarning)
                    warnings.simplefilter("ignore", UserWarning)
                    results += check_distribution(distribution)
    except CheckTargetError as exc:
        print(f"cplugins check: {exc}", file=sys.stderr)
        return 2
    failed = [r for r in results if r.status == "fail"]
    if args.json:
        print(json.dumps({"ok": not failed, "results": [r.to_dict() for r in results]},
                         indent=2))
    else:
        for result in results:
            print(result.line())
        counts = {s: sum(r.status == s for r in results) for s in ("pass", "fail", "warn",
                                                                    "skip")}
        print(", ".join(f"{n} {s}" for s, n in counts.items() if n) or "nothing checked")
    return 1 if failed else 0
