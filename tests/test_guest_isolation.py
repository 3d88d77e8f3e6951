"""Installing cplugins leaves other projects' pytest runs alone (issue 22): no pytest11 entry
point, so an unrelated project's session imports no cplugins module and sees numpy and
torchvision as they are; ``-p cplugins.testing`` (or ``pytest_plugins``) loads it on request."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

#: an unrelated project's one test: records what the session looks like, passes either way
PROBE = textwrap.dedent("""
    import json, os, sys

    def test_probe():
        import numpy
        try:
            import torchvision  # noqa: F401
            outcome = "imported"
        except Exception as exc:
            outcome = type(exc).__name__
        record = {
            "cplugins_modules": sorted(m for m in sys.modules if m.split(".")[0] == "cplugins"),
            "in1d": "in1d" in numpy.__dict__,
            "torchvision": outcome,
            "finders": sorted(type(f).__module__ for f in sys.meta_path),
        }
        with open(os.environ["PROBE_OUT"], "w") as f:
            json.dump(record, f)
""")


def _pytest(project: Path, *options: str) -> tuple[int, dict]:
    """Run pytest as the project's user would: its folder, no cplugins variables set."""
    out = project / f"probe{len(list(project.glob('probe*.json')))}.json"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CPLUGINS_") and k != "PYTHONPATH"}
    env["PROBE_OUT"] = str(out)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             *options, "test_unrelated.py"], cwd=project, env=env,
                            capture_output=True, text=True, timeout=300)
    return result.returncode, json.loads(out.read_text()) if out.exists() else {}


def test_an_unrelated_projects_pytest_run_is_the_same_with_and_without_cplugins(tmp_path):
    assert "cplugins.testing" not in {ep.value for ep in metadata.entry_points(group="pytest11")}
    (tmp_path / "test_unrelated.py").write_text(PROBE)
    plain = _pytest(tmp_path)
    without = _pytest(tmp_path, "-p", "no:cplugins")
    assert plain[0] == without[0] == 0
    assert plain[1] == without[1]
    assert plain[1]["cplugins_modules"] == []
    # asked for, the plugin loads (its fixtures): still no compatibility fix
    (tmp_path / "test_asks.py").write_text(textwrap.dedent("""
        import sys

        def test_fixture(cplugins_build):
            from cplugins import compat
            assert callable(cplugins_build) and not compat.ARMED
            assert "torch" not in sys.modules  # light until a fixture builds something
    """))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CPLUGINS_")}
    asked = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            "-p", "cplugins.testing", "test_asks.py"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
    assert asked.returncode == 0, asked.stdout[-2000:]
    unasked = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              "test_asks.py"], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=300)
    assert unasked.returncode == 1 and "fixture 'cplugins_build' not found" in unasked.stdout
