"""Process memory and machine facts from psutil; library versions from
``cplugins.versions.installed_version``."""
from __future__ import annotations

from importlib import metadata

import psutil
import torch

from cplugins.bench.measure import cpu_name, environment, peak_memory
from cplugins.versions import installed_version


def test_installed_version():
    assert installed_version("torch") == metadata.version("torch")
    assert installed_version("pluggy") == metadata.version("pluggy")
    assert installed_version("no-such-distribution-cplugins") is None


def test_environment_records_machine_and_versions():
    env = environment(torch.device("cpu"))
    assert env["cpu"] == cpu_name() and env["cpu"]
    assert env["cpu_count"] == psutil.cpu_count() and env["memory_bytes"] > 2**26
    assert 1 <= env["cpu_cores"] <= env["cpu_count"]
    assert env["versions"]["numpy"] == metadata.version("numpy")
    assert env["versions"]["mmengine"] == metadata.version("mmengine")


def test_peak_memory_sees_a_transient_allocation():
    size = 64 * 2**20

    def allocate_and_free() -> None:
        block = bytearray(size)
        block[::4096] = b"\x01" * len(block[::4096])  # touch every page: resident
        del block

    grown = peak_memory(allocate_and_free, torch.device("cpu"), interval=0.0002)
    assert grown["method"] == "process RSS growth (sampled)"
    assert 0.5 * size <= grown["bytes"] <= 4 * size
