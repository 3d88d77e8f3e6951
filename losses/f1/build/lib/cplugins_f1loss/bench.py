"""Benchmark cases of cplugins-f1loss: plain data (no torch import).

Each case names the module to time (``module``, a config dict built in the ``scope``
registry), the stock module it is compared with (``baseline`` / ``baseline_module``) and its
inputs: shapes as tuples, ``"int"`` for (N,) class indices drawn from the logits' C columns,
``"multilabel"`` for random (N, C) 0/1 targets.
"""


def benchmark_cases() -> list[dict]:
    return [
        {
            "name": "SoftF1Loss",
            "scope": "mmpretrain",
            "baseline": "CrossEntropyLoss",
            "module": dict(type="SoftF1Loss"),
            "baseline_module": dict(type="CrossEntropyLoss"),
            "inputs": {"logits": (256, 80), "labels": "int"},
        },
        {
            "name": "SoftF1Loss-sigmoid",
            "scope": "mmpretrain",
            "baseline": "CrossEntropyLoss",
            "module": dict(type="SoftF1Loss", activation="sigmoid"),
            "baseline_module": dict(type="CrossEntropyLoss", use_sigmoid=True),
            "inputs": {"logits": (256, 80), "labels": "multilabel"},
        },
        {
            "name": "SoftF1Loss-rcnn",
            "scope": "mmdet",
            "baseline": "CrossEntropyLoss",
            "module": dict(type="SoftF1Loss", loss_weight=1.0),
            "baseline_module": dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0),
            "inputs": {"logits": (512, 81), "labels": "int", "weight": (512, )},
        },
    ]
