"""Benchmark cases of cplugins-inception: plain data (no torch), read by the benchmark runner.

Each case names a module config (``type`` as registered by this plugin), the input shape
and the baseline it is to be compared with.
"""
from __future__ import annotations


def benchmark_cases() -> list[dict]:
    """Cases as dicts: ``name``, ``baseline``, ``baseline_module``, ``module``, ``inputs``."""
    resnet50 = dict(type="ResNet", depth=50, out_indices=(3,))
    return [
        {
            "name": "InceptionV4",
            "baseline": "ResNet-50 (mmpretrain ResNet depth=50)",
            "baseline_module": resnet50,
            "module": dict(type="InceptionV4", out_indices=(3,)),
            "inputs": {"shape": (2, 3, 299, 299)},
        },
        {
            "name": "InceptionV4-multilevel",
            "baseline": "ResNet-50 (mmpretrain ResNet depth=50, out_indices=(1, 2, 3))",
            "baseline_module": dict(type="ResNet", depth=50, out_indices=(1, 2, 3)),
            "module": dict(type="InceptionV4", out_indices=(1, 2, 3)),
            "inputs": {"shape": (2, 3, 512, 512)},
        },
        {
            "name": "BNInception",
            "baseline": "ResNet-50 (mmpretrain ResNet depth=50)",
            "baseline_module": resnet50,
            "module": dict(type="BNInception", out_indices=(3,)),
            "inputs": {"shape": (2, 3, 224, 224)},
        },
    ]
