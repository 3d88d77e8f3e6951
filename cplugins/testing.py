"""``cplugins.testing``: a pytest plugin for plugin authors, loaded only when asked.

Installing cplugins does not register it with pytest (no ``pytest11`` entry point: other
projects' test sessions stay as they were). A plugin project asks for it in its
``tests/conftest.py`` (what ``cplugins new`` writes)::

    pytest_plugins = ["cplugins.testing"]

or on the command line: ``pytest -p cplugins.testing``. Importing it imports neither torch nor
mmengine and applies no compatibility fix (:func:`cplugins.compat.apply` is a separate opt-in).

Fixtures:

* ``cplugins_build``: ``build(cfg, registry="mmdet::model")`` builds a config from a registry
  (``"scope::name"``, ``"hook"`` for the root hook registry) with that scope as default scope.
* ``cplugins_shapes`` (session): a tiny embedded synthetic shapes detection set (COCO format,
  4 + 2 images of 96x128); the dict :func:`cplugins.shapes.make_shapes_detection` returns.
* ``cplugins_train``: ``train(config, iters=2, data_root=None, cfg_options=None)`` trains a
  config for a few iterations on that data (or ``data_root``) with a stock mmengine
  ``Runner`` in a temporary work dir, without validation or checkpoints; returns a
  :class:`TrainResult`.

The checks of ``cplugins check`` as parametrized tests, one per check::

    from cplugins.testing import contract_tests
    test_contract = contract_tests("my-neck")
"""
from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

_RESULTS: dict[str, list] = {}


def contract_tests(distribution: str) -> Callable[[str], None]:
    """A test function parametrized over the checks of ``cplugins check DISTRIBUTION``: a
    failed check fails its test with the fix, a check that does not apply is skipped, a
    warning is a ``UserWarning``. The checks run once per process, on the first test."""
    from cplugins.check.contract import planned_ids

    @pytest.mark.parametrize("check_id", planned_ids(distribution))
    def test_contract(check_id: str) -> None:
        result = _result(distribution, check_id)
        if result.status == "fail":
            pytest.fail(result.line(), pytrace=False)
        if result.status == "skip":
            pytest.skip(result.message)
        if result.status == "warn":
            warnings.warn(result.line(), UserWarning, stacklevel=1)

    return test_contract


def _result(distribution: str, check_id: str):
    from cplugins.check.contract import check_distribution
    from cplugins.manager import CPluginsWarning

    if distribution not in _RESULTS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CPluginsWarning)  # the checks report it
            _RESULTS[distribution] = check_distribution(distribution)
    found = [r for r in _RESULTS[distribution] if r.id == check_id]
    if not found:
        pytest.fail(f"check {check_id!r} did not run (the plugin's declarations changed "
                    "during the session?)", pytrace=False)
    return found[0]


@pytest.fixture
def cplugins_build() -> Callable[..., Any]:
    """``build(cfg, registry="mmdet::model", scope=None)``: the built object."""
    from cplugins.check.contract import build

    return build


@pytest.fixture(scope="session")
def cplugins_shapes(tmp_path_factory) -> dict:
    """Tiny synthetic shapes detection data (COCO format): ``data_root``, ``classes``, ..."""
    from cplugins.shapes import make_shapes_detection

    return make_shapes_detection(tmp_path_factory.mktemp("cplugins_shapes"), num_train=4,
                                 num_val=2, image_size=(96, 128), seed=0)


@dataclass
class TrainResult:
    """What a few-iteration training did: the runner, its iterations, every ``train/loss``
    value logged, the last value of each ``train/*`` scalar (``loss``, ``loss_bbox``, ...)."""

    runner: Any
    iterations: int
    losses: list[float] = field(default_factory=list)
    scalars: dict[str, float] = field(default_factory=dict)

    @property
    def model(self) -> Any:
        return getattr(self.runner.model, "module", self.runner.model)

    @property
    def train_dataset(self) -> Any:
        return self.runner.train_dataloader.dataset


def _innermost(dataset_cfg: Any) -> Any:
    while "dataset" in dataset_cfg:  # RepeatDataset, ClassBalancedDataset, ...
        dataset_cfg = dataset_cfg["dataset"]
    return dataset_cfg


def train_few_iterations(config: str | Path | Any, work_dir: str | Path, data_root: str,
                         iters: int = 2, cfg_options: dict | None = None) -> TrainResult:
    """Train ``config`` (a file or an mmengine ``Config``) for ``iters`` iterations on the
    detection data under ``data_root``: iteration-based loop, batch of at most 2, no worker
    processes, no validation, test or checkpoints, a log line per iteration."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

    cfg = copy.deepcopy(config) if isinstance(config, Config) else Config.fromfile(str(config))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    _innermost(cfg.train_dataloader.dataset)["data_root"] = str(data_root)
    cfg.train_dataloader.update(num_workers=0, persistent_workers=False,
                                batch_size=min(2, cfg.train_dataloader.get("batch_size", 2)))
    cfg.train_cfg = dict(type="IterBasedTrainLoop", max_iters=iters, val_interval=iters + 1)
    for key in ("val_dataloader", "val_cfg", "val_evaluator", "test_dataloader", "test_cfg",
                "test_evaluator"):
        cfg[key] = None
    cfg.log_processor = dict(cfg.get("log_processor") or {}, by_epoch=False)
    cfg.default_hooks = dict(cfg.get("default_hooks") or {}, checkpoint=None,
                             logger=dict(type="LoggerHook", interval=1))
    cfg.work_dir, cfg.load_from, cfg.resume = str(work_dir), None, False
    cfg = Config(cfg.to_dict(), filename=cfg.filename, format_python_code=False)
    saved = copy.copy(DefaultScope._instance_dict)  # the runner sets a default scope
    try:
        runner = Runner.from_cfg(cfg)
        runner.train()
    finally:
        DefaultScope._instance_dict = saved
    hub = runner.message_hub
    losses = [float(v) for v in hub.get_scalar("train/loss").data[0]] \
        if "train/loss" in hub.log_scalars else []
    scalars = {key.removeprefix("train/"): float(buffer.current())
               for key, buffer in hub.log_scalars.items() if key.startswith("train/")}
    return TrainResult(runner, runner.iter, losses, scalars)


@pytest.fixture
def cplugins_train(request, tmp_path) -> Callable[..., TrainResult]:
    """``train(config, iters=2, data_root=None, cfg_options=None)`` -> :class:`TrainResult`;
    without ``data_root`` it trains on ``cplugins_shapes``."""

    def train(config: str | Path | Any, iters: int = 2, data_root: str | None = None,
              cfg_options: dict | None = None) -> TrainResult:
        root = data_root or request.getfixturevalue("cplugins_shapes")["data_root"]
        return train_few_iterations(config, tmp_path / "work", root, iters, cfg_options)

    return train
