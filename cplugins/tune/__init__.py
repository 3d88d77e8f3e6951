"""Hyperparameter search over a template's declared ranges, on Optuna (``cplugins tune``).

    from cplugins.tune import tune
    study = tune("MMDetection_YOLOX", n_trials=12, metric="coco/bbox_mAP",
                 search=["per_item_lrate", "batch_size=2:8"], fixed={"model_size": "tiny"})
    print(study.best_trial.params, study.best_value)

Modules: :mod:`~cplugins.tune.space` (hyperparameters -> distributions),
:mod:`~cplugins.tune.objective` (one trial), :mod:`~cplugins.tune.storage` (storage URLs and
heartbeats), :mod:`~cplugins.tune.study` (the study and its loop), :mod:`~cplugins.tune.show`
(table, best config, charts), :mod:`~cplugins.tune.cli`. Optuna is imported only when used.
"""
from __future__ import annotations

from typing import Any

__all__ = ["TuneError", "tune"]


def __getattr__(name: str) -> Any:
    if name == "tune":
        from cplugins.tune.study import tune

        return tune
    if name == "TuneError":
        from cplugins.tune.space import TuneError

        return TuneError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
