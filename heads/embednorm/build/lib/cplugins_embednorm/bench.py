"""Benchmark cases of cplugins-embednorm: plain data (no torch import).

Each case names the head to time (``module``, a config dict built in the ``scope``
registry), the stock head it is compared with (``baseline`` / ``baseline_module``) and its
inputs: ``"feats"`` is the (N, in_channels) pooled feature, ``"labels"`` is ``"int"`` for
(N,) class indices or ``"multilabel"`` for random multi-hot labels.
"""


def benchmark_cases() -> list[dict]:
    return [
        {
            "name": "EmbedNormClsHead",
            "scope": "mmpretrain",
            "baseline": "LinearClsHead",
            "module": dict(type="EmbedNormClsHead", num_classes=1000, in_channels=2048,
                           embed_dim=256),
            "baseline_module": dict(type="LinearClsHead", num_classes=1000, in_channels=2048),
            "inputs": {"feats": (256, 2048), "labels": "int"},
        },
        {
            "name": "EmbedNormClsHead-logreg",
            "scope": "mmpretrain",
            "baseline": "MultiLabelLinearClsHead",
            "module": dict(type="EmbedNormClsHead", num_classes=80, in_channels=2048,
                           embed_dim=256, logreg=True),
            "baseline_module": dict(type="MultiLabelLinearClsHead", num_classes=80,
                                    in_channels=2048),
            "inputs": {"feats": (256, 2048), "labels": "multilabel"},
        },
    ]
