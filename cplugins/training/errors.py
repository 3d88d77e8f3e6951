"""Errors of training and checkpoint handling; each message says what happened and what to do."""
from __future__ import annotations

from cplugins.errors import CPluginsError


class TrainingError(CPluginsError):
    """Training stopped because continuing would produce a wrong result."""


class NonFiniteError(TrainingError):
    """A loss, gradient norm or checkpoint tensor is NaN or infinite."""


class EmptyValidationError(TrainingError):
    """Validation produced no metrics at all."""


class CheckpointWriteError(TrainingError):
    """A checkpoint could not be written (full disk, file size limit, permissions...)."""


class CheckpointFileError(CPluginsError):
    """A file given as a checkpoint is missing, empty, truncated or not a checkpoint."""


class CheckpointMismatchError(CPluginsError):
    """A checkpoint's keys or shapes do not match the model."""


class PreflightError(CPluginsError):
    """A config cannot run as it is: found before anything is built (one line per problem)."""
