"""What importing a plugin's hook module costs: seconds and the heavy packages it pulls in.

A hook module is imported by ``cplugins list`` (and by every process that discovers plugins);
it must import only ``cplugins``. One that imports torch makes listing ten times slower.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

#: top-level packages a hook module should not import
HEAVY_PACKAGES: tuple[str, ...] = (
    "torch", "torchvision", "mmcv", "mmengine", "mmdet", "mmpretrain", "mmseg", "numpy", "cv2",
    "scipy", "matplotlib", "pandas", "PIL", "timm", "transformers")
#: a hook module slower than this is reported even without a heavy package
SLOW_SECONDS = 1.0


@dataclass(frozen=True)
class ImportCost:
    """Seconds an import took and the heavy packages that were first imported by it."""

    seconds: float
    heavy: tuple[str, ...]

    @property
    def light(self) -> bool:
        return not self.heavy and self.seconds < SLOW_SECONDS

    def __str__(self) -> str:
        pulled = f"imports {', '.join(self.heavy)}" if self.heavy else "is slow"
        return f"{pulled} ({self.seconds:.2f} s)"


def measure_import(load: Callable[[], T]) -> tuple[T, ImportCost]:
    """Run ``load()`` and measure it; only packages not imported before count as its cost."""
    before = set(sys.modules)
    start = time.perf_counter()
    result = load()
    seconds = time.perf_counter() - start
    new = {name.partition(".")[0] for name in set(sys.modules) - before}
    return result, ImportCost(seconds, tuple(p for p in HEAVY_PACKAGES if p in new))
