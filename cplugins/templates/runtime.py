"""Imported by every rendered config (``custom_imports``), so stock mmengine tools run it.

* registers cplugins' built-in modules (``MinSamplesDataset``, ``OHEMLoss``, ``ProgressHook``)
  the way ``custom_imports`` of a plugin package does;
* puts the fail-fast reachability check of :mod:`cplugins.templates.weights` in front of
  mmengine's ``http://`` / ``https://`` checkpoint loader: offline, loading a URL fails within
  seconds with a message saying how to pass a local file, instead of hanging.
"""
from __future__ import annotations

from cplugins import activate
from cplugins.templates.weights import ensure_available


def _install_checked_http_loader() -> None:
    from mmengine.runner.checkpoint import CheckpointLoader

    schemes = CheckpointLoader._schemes
    original = schemes.get("https://")
    if original is None or getattr(original, "cplugins_checked", False):
        return

    def load_from_http_checked(filename, map_location=None, model_dir=None, progress=False):
        ensure_available(filename)
        return original(filename, map_location=map_location, model_dir=model_dir,
                        progress=progress)

    load_from_http_checked.cplugins_checked = True
    load_from_http_checked.__doc__ = original.__doc__
    CheckpointLoader.register_scheme(("http://", "https://"), load_from_http_checked,
                                     force=True)


activate("cplugins")
_install_checked_http_loader()
