"""Modules that moved keep their old import names, with a DeprecationWarning that names the new
one, and give the very same objects (#23: public names unchanged or deprecated)."""
from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

MOVED = [("cplugins.bench.case", "cplugins.cases", "BenchmarkCase"),
         ("cplugins.bench.inputs", "cplugins.inputs", "feature_pyramid"),
         ("cplugins.data.shapes", "cplugins.shapes", "make_shapes_detection"),
         ("cplugins.templates.data", "cplugins.data.layouts", "resolve_data"),
         ("cplugins.templates.weights", "cplugins.training.weights", "URLS")]


@pytest.mark.parametrize("old, new, name", MOVED)
def test_old_name_warns_and_gives_the_same_object(old, new, name, monkeypatch):
    monkeypatch.delitem(sys.modules, old, raising=False)
    with pytest.warns(DeprecationWarning, match=f"{old} is deprecated: import {new}"):
        module = importlib.import_module(old)
    assert getattr(module, name) is getattr(importlib.import_module(new), name)
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018


def test_old_shapes_command_still_runs(tmp_path):
    result = subprocess.run([sys.executable, "-W", "always::DeprecationWarning", "-m",
                             "cplugins.data.shapes", "detection", "--out", str(tmp_path / "d"),
                             "--num-train", "1", "--num-val", "1"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "cplugins.data.shapes is deprecated" in result.stderr
    assert (tmp_path / "d" / "annotations").is_dir()
