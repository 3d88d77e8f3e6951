"""One outcome of ``cplugins check``: what was checked, on what, the verdict and the fix."""
from __future__ import annotations

from dataclasses import asdict, dataclass

#: verdicts; only "fail" makes ``cplugins check`` exit non-zero
STATUSES = ("pass", "fail", "warn", "skip")


@dataclass
class CheckResult:
    """``check`` (e.g. ``"forward-backward"``) of ``subject`` (``"MyNeck -> mmdet::model"``)."""

    check: str
    subject: str
    status: str
    message: str
    fix: str = ""
    seconds: float = 0.0
    distribution: str = ""  # set for module checks: subjects repeat across distributions

    @property
    def id(self) -> str:
        """``DIST::check`` or ``DIST::Name -> scope::registry::check``: unique in a run."""
        prefix = f"{self.distribution}::" if self.distribution else ""
        return f"{prefix}{self.subject}::{self.check}"

    def line(self) -> str:
        """``FAIL  kind          MyNeck -> mmdet::model: ... Fix: ...``"""
        fix = f" Fix: {self.fix}" if self.fix and self.status in ("fail", "warn") else ""
        return f"{self.status.upper():<4}  {self.check:<16}  {self.subject}: {self.message}{fix}"

    def to_dict(self) -> dict:
        return {**asdict(self), "id": self.id}
