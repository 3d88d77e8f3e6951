"""The plugin lock: which plugin distributions a training used, so its checkpoint can be rebuilt.

A lock is a list of plain dicts (what ``checkpoint['meta']['cplugins_lock']`` and the work
dir's ``cplugins-lock.json`` hold)::

    {"distribution": "cplugins-augfpn", "version": "0.1.0", "package": "cplugins_augfpn",
     "plugin": "augfpn", "modules": ["AugFPN"], "record_sha256": "..."}

``modules`` are the ``type`` names of the config that the plugin provides; ``record_sha256``
is the hash of the installed distribution's ``RECORD`` (same version, other build: it
differs). Reading it needs metadata only; loading it from a checkpoint needs torch.
"""
from __future__ import annotations

import hashlib
import json
import os.path as osp
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from cplugins.errors import PluginLockError
from cplugins.manager import get_manager

#: (where it came from, the lock) of every lock this process read: an unknown ``type`` that
#: one of them provides is explained with its distribution and version (cplugins.diagnose)
_REMEMBERED: list[tuple[str, list[dict]]] = []

META_KEY = "cplugins_lock"
LOCK_FILE = "cplugins-lock.json"


def config_types(cfg: Any) -> set[str]:
    """Every string ``type`` in a config (nested dicts and lists), scope prefix removed."""
    found: set[str] = set()
    stack = [cfg.to_dict() if hasattr(cfg, "to_dict") else cfg]  # an mmengine Config
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            value = node.get("type")
            if isinstance(value, str):
                found.add(value.rpartition(".")[2])
            stack.extend(node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend(node)
    return found


def record_sha256(distribution: str) -> str:
    """sha256 of the installed distribution's RECORD ("" when it has none)."""
    try:
        text = metadata.distribution(distribution).read_text("RECORD")
    except metadata.PackageNotFoundError:
        return ""
    return hashlib.sha256(text.encode()).hexdigest() if text else ""


def plugin_lock(cfg: Any) -> list[dict]:
    """The lock of ``cfg``: one entry per plugin distribution whose modules it uses."""
    manager = get_manager()
    manager.discover()
    used = config_types(cfg)
    lock = []
    for record in manager.records.values():
        modules = sorted({s.name for s in record.specs} & used)
        if not modules:
            continue
        lock.append({"distribution": record.distribution, "version": record.version,
                     "package": record.package, "plugin": record.name, "modules": modules,
                     "record_sha256": record_sha256(record.distribution)})
    return lock


def remember(source: str, lock: Iterable[dict]) -> None:
    """Keep ``lock`` (read from ``source``) for explaining unknown types later."""
    lock = [dict(entry) for entry in lock]
    if lock and (source, lock) not in _REMEMBERED:
        _REMEMBERED.append((source, lock))


def remembered_locks() -> list[tuple[str, list[dict]]]:
    """The locks this process read, as ``(source, lock)``, most recent first."""
    return list(reversed(_REMEMBERED))


@dataclass(frozen=True)
class LockProblem:
    """A locked distribution that is missing, or installed at another version or build."""

    entry: dict
    installed: str | None

    @property
    def missing(self) -> bool:
        return self.installed is None

    @property
    def requirement(self) -> str:
        return f"{self.entry['distribution']}=={self.entry['version']}"

    def __str__(self) -> str:
        entry = self.entry
        uses = f"its modules {', '.join(entry.get('modules', []))}"
        if self.missing:
            state = "is not installed"
        elif self.installed != entry["version"]:
            state = f"is installed at {self.installed}"
        else:
            state = "is installed from another build (its RECORD differs)"
        return (f"the checkpoint was trained with {entry['distribution']} {entry['version']} "
                f"({uses}), which {state}: pip install '{self.requirement}'")


def lock_problems(lock: Iterable[dict]) -> list[LockProblem]:
    """What differs between ``lock`` and the installed distributions."""
    problems = []
    for entry in lock:
        try:
            installed = metadata.version(entry["distribution"])
        except metadata.PackageNotFoundError:
            installed = None
        if installed is None or installed != entry["version"]:
            problems.append(LockProblem(entry, installed))
        elif entry.get("record_sha256") and (
                record_sha256(entry["distribution"]) != entry["record_sha256"]):
            problems.append(LockProblem(entry, installed))
    return problems


def checkpoint_lock(checkpoint: dict) -> list[dict] | None:
    """The lock in a loaded checkpoint's ``meta`` (None: it has none)."""
    meta = checkpoint.get("meta") if isinstance(checkpoint, dict) else None
    lock = meta.get(META_KEY) if isinstance(meta, dict) else None
    return list(lock) if lock is not None else None


def _load_mapped(path: str):
    """``torch.load`` weights-only with the allowlist of mmengine's checkpoint types for this
    call only (:func:`cplugins.compat.checkpoint_safe_globals`; nothing global changes),
    tensors memory-mapped so that reading the meta of a big checkpoint costs little."""
    import contextlib

    import torch

    from cplugins.compat import checkpoint_safe_globals

    allow = getattr(torch.serialization, "safe_globals", None)  # torch >= 2.5
    # only the ones not allowed already: on exit the context *removes* what it was given, which
    # would take away the allowlist an opted-in compat fix installed for the whole process
    allowed = set(torch.serialization.get_safe_globals()) if allow else set()
    missing = [g for g in checkpoint_safe_globals() if g not in allowed]
    with allow(missing) if allow else contextlib.nullcontext():
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # a legacy (non-zip) file cannot be memory-mapped
            return torch.load(path, map_location="cpu", weights_only=True)


def read_lock(path: str) -> list[dict]:
    """The lock of a checkpoint (``.pth``, loaded weights-only), of a lock JSON file, or of a
    config that ``tools/train.py`` saved (its ``cplugins_lock``; nothing is imported)."""
    if path.endswith(".json"):
        with open(path) as f:
            lock = json.load(f)
        remember(path, lock)
        return lock
    if path.endswith(".py"):
        from mmengine.config import Config

        lock = Config.fromfile(path, import_custom_modules=False).get(META_KEY)
        if lock is None:
            raise PluginLockError(f"{path} has no {META_KEY!r} entry: it is not a config that "
                                  "cplugins' tools/train.py saved in a work dir")
        lock = [dict(entry) for entry in lock]
        remember(path, lock)
        return lock
    lock = checkpoint_lock(_load_mapped(path))
    if lock is None:
        raise PluginLockError(f"{path} has no plugin lock (meta[{META_KEY!r}]): it was not "
                              "trained with cplugins' tools/train.py or its PluginLockHook")
    remember(path, lock)
    return lock


def requirement_lines(lock: Iterable[dict]) -> Iterator[str]:
    """pip requirement lines, each with the modules it provides as a comment."""
    for entry in lock:
        yield (f"{entry['distribution']}=={entry['version']}  # "
               f"{', '.join(entry.get('modules', []))}")


def check_checkpoint_plugins(checkpoint: dict | None, path: str) -> list[str]:
    """Raise :class:`PluginLockError` if the plugins ``checkpoint`` (loaded from ``path``) was
    trained with are not installed; return warnings for those installed at another version
    or build. A checkpoint without a lock passes: nothing is known about it."""
    lock = checkpoint_lock(checkpoint) if checkpoint is not None else None
    remember(path, lock or [])
    problems = lock_problems(lock or [])
    missing = [p for p in problems if p.missing]
    if missing:
        raise PluginLockError(f"{path}: " + "; ".join(map(str, missing)))
    return [f"{path}: {p}" for p in problems]


def check_checkpoint_file(path: str) -> list[str]:
    """:func:`check_checkpoint_plugins` for a local checkpoint file that is not loaded yet
    (memory-mapped: its tensors are not read). Before a config imports the plugins (whose
    absence would end in a bare ImportError). Unreadable or lock-less files pass: the
    checkpoint checks that load it report those."""
    if "://" in path or not osp.isfile(path):
        return []
    try:
        checkpoint = _load_mapped(path)
    except Exception:  # not ours to report: the loading checks say what is wrong with it
        return []
    return check_checkpoint_plugins(checkpoint, path)
