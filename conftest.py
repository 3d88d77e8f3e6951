"""Repository-wide test isolation (tests/, benchmarks/ and every plugin's tests/)."""
from __future__ import annotations

import copy
import sys

import pytest


@pytest.fixture(autouse=True)
def isolated_default_scope():
    """Undo any mmengine default scope a test sets (``init_default_scope``, runners), so a
    later test's ``Registry.build`` is not silently redirected to another repo's registry.
    Same save/restore as mmengine's own ``DefaultScope.overwrite_default_scope``."""
    registry = sys.modules.get("mmengine.registry")
    saved = copy.copy(registry.DefaultScope._instance_dict) if registry else None
    yield
    registry = sys.modules.get("mmengine.registry")
    if registry is not None:
        registry.DefaultScope._instance_dict = saved if saved is not None else {}
