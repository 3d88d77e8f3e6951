"""``cplugins.import_hooks.when_imported`` (wrapt's post-import hooks): once, after the module
body, immediately when already imported, and nothing imported by watching."""
from __future__ import annotations

import json
import sys
import textwrap

from helpers import run_python

from cplugins import import_hooks


def test_fires_once_after_import_and_at_once_when_already_imported(tmp_path, monkeypatch):
    (tmp_path / "watched_module_a.py").write_text("VALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    seen = []
    import_hooks.when_imported("watched_module_a", lambda m: seen.append(("first", m.VALUE)))
    import_hooks.when_imported("watched_module_a", lambda m: seen.append(("second", m.VALUE)))
    assert "watched_module_a" not in sys.modules and seen == []
    import watched_module_a  # noqa: F401

    assert seen == [("first", 42), ("second", 42)]  # after the body ran, in order
    import importlib

    importlib.reload(watched_module_a)
    assert len(seen) == 2  # once
    import_hooks.when_imported("watched_module_a", lambda m: seen.append(("late", m.VALUE)))
    assert seen[-1] == ("late", 42)  # already imported: now
    monkeypatch.delitem(sys.modules, "watched_module_a")


def test_watching_and_arming_the_fixes_import_nothing():
    code = textwrap.dedent("""
        import sys
        from cplugins import compat, import_hooks
        import_hooks.when_imported("mmengine.registry.registry", print)
        compat.apply()
        print(sorted(m for m in ("torch", "torchvision", "numpy", "mmengine") if m in sys.modules))
    """)
    result = run_python(code, env={"CPLUGINS_COMPAT": "0"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_torchvision_fix_runs_when_torch_is_imported_by_torchvision():
    """torchvision imports torch first: the fix (a hook on torch) runs before torchvision
    registers its ops, also when ``import torchvision`` is the first import."""
    code = textwrap.dedent("""
        import json
        from cplugins import compat
        compat.apply()
        import torchvision, torch
        boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [20., 20., 30., 30.]])
        keep = torch.ops.torchvision.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5)
        print(json.dumps([keep.tolist(), compat.report()[0]["state"]]))
    """)
    result = run_python(code, env={"CPLUGINS_COMPAT": "0"})
    assert result.returncode == 0, result.stderr[-2000:]
    keep, state = json.loads(result.stdout.strip().splitlines()[-1])
    assert keep == [0, 2]
    assert state in ("applied", "not needed")  # not needed where torchvision's own ops load
