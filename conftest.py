"""Repository-wide test set-up (tests/, benchmarks/ and every plugin's tests/): the
compatibility fixes and cplugins' pytest plugin, both opt-in, and default-scope isolation."""
from __future__ import annotations

import copy
import os
import sys

import pytest

from cplugins import ENV_COMPAT, compat

# this repository's tests run on the pinned stack with its known breakages: opt in to the fixes
# before any test module imports torchvision / mmdet (installing cplugins applies none), and
# pass the opt-in on to the Python processes the tests start (they apply it at import cplugins)
compat.apply()
os.environ[ENV_COMPAT] = "1"
# the fixtures of cplugins.testing (cplugins_build, cplugins_train, ...): loaded on request only
pytest_plugins = ["cplugins.testing"]


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
