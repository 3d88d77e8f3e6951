"""Imported by every rendered config (``custom_imports``), so stock mmengine tools run it.

* opts in to cplugins' compatibility fixes (:func:`cplugins.compat.apply`): a config saved by
  ``tools/train.py`` lists this module in ``custom_imports``, so a stock Runner rebuilding it
  gets the fixes its training had (a config without it gets none);
* registers cplugins' built-in modules (``MinSamplesDataset``, ``OHEMLoss``, ``ProgressHook``)
  the way ``custom_imports`` of a plugin package does;
* puts the fail-fast reachability check of :mod:`cplugins.training.weights` in front of
  mmengine's ``http://`` / ``https://`` checkpoint loader: offline, loading a URL fails within
  seconds with a message saying how to pass a local file, instead of hanging;
* keeps a template run's log readable (:class:`TemplateLogFilter`): the whole rendered config
  is in the work dir's ``NAME.py``, not repeated in the log, and the per-parameter
  ``paramwise_options`` lines (hundreds for SegFormer) become one line.
"""
from __future__ import annotations

import logging
import re

from cplugins import activate, compat
from cplugins.training.weights import ensure_available

_TEMPLATE_NAME = re.compile(r"^template = dict\(.*?\bname='([^']+)'", re.S | re.M)


class TemplateLogFilter(logging.Filter):
    """Shortens what mmengine logs for a rendered template (other configs are untouched).

    The runner's ``Config:`` dump of a rendered config (it has a ``template`` entry) becomes
    one line naming the file that holds it; after it, the first ``paramwise_options`` line
    becomes a summary and the others are dropped.
    """

    def __init__(self) -> None:
        super().__init__()
        self.template: str | None = None
        self.paramwise_seen = False

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg
        if not isinstance(message, str):
            return True
        if message.startswith("Config:\n"):
            match = _TEMPLATE_NAME.search(message)
            if match:
                self.template = match.group(1)
                short = self.template.rpartition("/")[2]
                record.msg = (f"Config: template {self.template}, {len(message.splitlines())} "
                              f"lines: see {short}.py in the work dir (or `cplugins render`)")
                record.args = ()
            return True
        if self.template and message.startswith("paramwise_options -- "):
            if self.paramwise_seen:
                return False
            self.paramwise_seen = True
            record.msg = ("paramwise_options: per-parameter multipliers of "
                          "optim_wrapper.paramwise_cfg applied (not listed one by one)")
            record.args = ()
        return True


def _install_log_filter() -> None:
    """Every ``MMLogger`` created from now on (a runner's) gets a :class:`TemplateLogFilter`."""
    from mmengine.logging import MMLogger

    original = MMLogger.__init__
    if getattr(original, "cplugins_filtered", False):
        return

    def init_with_filter(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.addFilter(TemplateLogFilter())

    init_with_filter.cplugins_filtered = True
    MMLogger.__init__ = init_with_filter


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


compat.apply()
activate("cplugins")
_install_checked_http_loader()
_install_log_filter()
