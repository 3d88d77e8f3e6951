"""Errors cplugins raises, each saying what was wrong and what is allowed."""
from __future__ import annotations


class CPluginsError(Exception):
    """Base class of cplugins errors."""


class PluginConflictError(CPluginsError):
    """Two distributions provide the same name in the same registry."""


class PluginLoadError(CPluginsError):
    """A config needs a module whose plugin failed to load."""


class UnknownTypeError(CPluginsError, KeyError):
    """A config names a ``type`` no registry knows; the message suggests close names."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class PluginIncompatibleError(CPluginsError):
    """A plugin's version ranges (its Requires-Dist) exclude the installed stack."""


class PluginLockError(CPluginsError):
    """A checkpoint needs plugin distributions that are not installed."""


class TemplateError(CPluginsError):
    """A template is unknown, ambiguous, badly declared, or cannot be rendered (its weights
    included); raised by cplugins' templates and training parts."""
