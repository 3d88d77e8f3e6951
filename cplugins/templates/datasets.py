"""``MinSamplesDataset``: repeat a small dataset so that an epoch has at least N samples.

Behind the templates' ``min_samples_per_epoch``. Unlike mmengine's ``RepeatDataset(times=...)``
the number of repeats is computed from the wrapped dataset's real length (after filtering),
``ceil(min_samples / len(dataset))``, so the rendered config does not depend on the data.
"""
from __future__ import annotations

import math

from mmengine.dataset import BaseDataset, RepeatDataset


class MinSamplesDataset(RepeatDataset):
    """``dataset`` repeated ``max(1, ceil(min_samples / len(dataset)))`` times.

    Args:
        dataset: the dataset or its config.
        min_samples: the fewest samples an epoch may have (>= 1).
        lazy_init: defer loading the annotations (as mmengine datasets do).
    """

    def __init__(self, dataset: BaseDataset | dict, min_samples: int,
                 lazy_init: bool = False) -> None:
        if isinstance(min_samples, bool) or not isinstance(min_samples, int) or min_samples < 1:
            raise ValueError(f"min_samples must be an integer >= 1, got {min_samples!r}")
        self.min_samples = min_samples
        super().__init__(dataset, times=1, lazy_init=lazy_init)

    def full_init(self) -> None:
        if self._fully_initialized:
            return
        super().full_init()
        if self._ori_len == 0:
            raise ValueError("MinSamplesDataset: the wrapped dataset is empty")
        self.times = max(1, math.ceil(self.min_samples / self._ori_len))
