"""Open a Deep Lake dataset (path, version, query or saved view) with clear errors.

``deeplake`` is imported here and only here, lazily: its import starts a bundled crash reporter
that attempts a DNS lookup to its vendor and wraps ``os.fork``, so listing or activating the
plugin must not import it.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from typing import Any

from cplugins.errors import CPluginsError

INSTALL_HINT = "pip install cplugins-deeplake (it depends on deeplake>=4.7,<5)"


class DeepLakeError(CPluginsError, ValueError):
    """Bad Deep Lake input: the message names the dataset, column or key and what is allowed."""


def import_deeplake():
    """The ``deeplake`` module, or a :class:`DeepLakeError` saying what to install."""
    try:
        import deeplake
    except ImportError as exc:
        raise DeepLakeError(f"Deep Lake datasets need the deeplake package, which is not "
                            f"installed ({exc}): {INSTALL_HINT}") from None
    return deeplake


@dataclass(frozen=True)
class Source:
    """Where the rows come from: everything a worker process needs to reopen them."""

    path: str
    version: str | None = None
    query: str | None = None
    view: str | None = None
    creds: dict | None = None
    token: str | None = None
    #: set by :func:`pin`: the branch and its commit the rows were read at
    branch: str | None = None
    commit: str | None = None

    def __post_init__(self) -> None:
        # identifies the rows across processes; computed once and pickled with the samples
        # (looked up per sample: computing it there cost as much as reading the image bytes)
        object.__setattr__(self, "key", json.dumps(asdict(self), sort_keys=True, default=str))


def _url(path: str) -> str:
    if "://" in path:
        return path
    return "file://" + os.path.abspath(os.path.expanduser(path))


def _open_root(source: Source):
    deeplake = import_deeplake()
    kwargs: dict[str, Any] = {}
    if source.creds:
        kwargs["creds"] = dict(source.creds)
    if source.token:
        kwargs["token"] = source.token
    try:
        return deeplake.open_read_only(_url(source.path), **kwargs)
    except Exception as exc:  # LogNotexistsError and storage errors: not a dataset here
        raise DeepLakeError(f"{source.path!r} is not a Deep Lake dataset "
                            f"({type(exc).__name__}: {exc}); give the folder that "
                            f"deeplake.create() or `cplugins data convert` wrote") from None


def _open_version(root, source: Source):
    """``version`` is a tag, a branch or a commit id (tried in that order)."""
    version = source.version
    tags, branches = list(root.tags.names()), list(root.branches.names())
    if version in tags:
        return root.tags[version].open()
    if version in branches:
        return root.branches[version].open()
    commits = [v.id for v in root.history]
    if version in commits:
        return root.history[version].open()
    raise DeepLakeError(
        f"{source.path!r}: unknown version {version!r}; allowed: a tag "
        f"({', '.join(tags) or 'none'}), a branch ({', '.join(branches)}) or one of the "
        f"{len(commits)} commit ids (latest: {', '.join(commits[-3:])})")


def _opened(source: Source):
    root = _open_root(source)
    if source.commit is not None:
        return root.branches[source.branch].open().history[source.commit].open()
    if source.version is not None:
        return _open_version(root, source)
    return root


def pin(source: Source) -> Source:
    """``source`` at the commit its branch head is at now: a branch (or the default one) may
    get new commits while training runs, and a worker that reopens it must see the same rows
    (commit ids are per branch, so the branch is kept too)."""
    if source.view is not None or source.commit is not None:
        return source
    root = _open_root(source)
    if source.version is None:
        branch = root.current_branch.name
    elif source.version in list(root.branches.names()):
        branch = source.version
    else:
        return source  # a tag or a commit id: immutable already
    head = root.branches[branch].open()
    return replace(source, branch=branch, commit=head.version)


def open_source(source: Source):
    """The rows of ``source`` (a read-only dataset or a query view)."""
    data = _opened(source)
    if source.view is not None:
        tags = list(_open_root(source).tags.names())
        if source.view not in tags:
            raise DeepLakeError(f"{source.path!r}: no saved view {source.view!r}; saved views "
                                f"and tags: {', '.join(tags) or 'none'}")
        data = _open_root(source).tags[source.view].open()
    if source.query is not None:
        try:
            data = data.query(source.query)
        except Exception as exc:
            raise DeepLakeError(f"{source.path!r}: the query {source.query!r} failed: "
                                f"{exc}") from None
    return data


_OPEN: dict[tuple[str, str], tuple[int, Any, Any]] = {}


def open_column(source: Source, column: str):
    """Column ``column`` of :func:`open_source`, opened once per process (a forked worker
    reopens its own; looking the column up again per row doubled the read time)."""
    key, pid = (source.key, column), os.getpid()
    cached = _OPEN.get(key)
    if cached is None or cached[0] != pid:
        data = open_source(source)  # kept: a column expires with its dataset
        cached = _OPEN[key] = (pid, data, data[column])
    return cached[2]
