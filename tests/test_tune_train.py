"""`cplugins tune` with real Optuna and real trainings (tiny): a seeded search whose trials
train with the values sampled and whose best config reproduces its metric; two processes
sharing a study; a killed study continued; median pruning; a metric the evaluator never produces.

CPU budget: Faster R-CNN with a 16-channel ResNet-18 and 64-channel heads
(tests/test_templates_train.py's SMALL_HEADS) on 2 training images of 96x128 px, 1-2
iterations an epoch; one `cplugins tune` process killed mid-trial, then two that continue its
study together (each subprocess pays the OpenMMLab imports).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import run_python
from test_templates_train import SMALL_HEADS

pytestmark = pytest.mark.slow

TEMPLATE = "MMDetection_FasterRCNN"
METRIC = "coco/bbox_mAP"
#: every trial: a slim backbone, the small heads, no worker processes, no checkpoint files,
#: untrained scores kept
OPTIONS = {**SMALL_HEADS["faster_rcnn"], "model.test_cfg.rcnn.score_thr": 0.0,
           "model.backbone.depth": 18, "model.backbone.base_channels": 16,
           "model.neck.in_channels": [16, 32, 64, 128],
           "default_hooks.checkpoint": None, "default_hooks.logger.interval": 1,
           **{f"{split}_dataloader.{key}": value
              for split in ("train", "val", "test")
              for key, value in (("num_workers", 0), ("persistent_workers", False))}}
#: a frozen backbone (backward through the pyramid and heads only), 64 px images
FIXED = {"image_size": "64", "num_epochs": "1", "frozen_stages": "4"}


@pytest.fixture(scope="session")
def shapes(tmp_path_factory) -> str:
    """The embedded synthetic detection set: 2 training images, 1 validation image."""
    from cplugins.shapes import make_shapes_detection

    root = tmp_path_factory.mktemp("tune_shapes") / "det"
    return make_shapes_detection(root, num_train=2, num_val=1, image_size=(96, 128),
                                 seed=3)["data_root"]


def _cli_options() -> list[str]:
    def text(value) -> str:
        return ("None" if value is None else
                "[" + ",".join(map(str, value)) + "]" if isinstance(value, list) else str(value))

    return [f"{k}={text(v)}" for k, v in OPTIONS.items()]


def _tune_command(shapes: str, storage: str, trials: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "cplugins.cli", "tune", TEMPLATE, "--trials", str(trials),
            "--metric", METRIC, "--study", "s", "--storage", storage, "--data", shapes,
            "--search", "per_item_lrate", "batch_size=1:2",
            "--set", *(f"{k}={v}" for k, v in FIXED.items()),
            "--pruner", "none", "--cfg-options", *_cli_options(), *extra]


def _env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("CPLUGINS_")}


def losses(work_dir: Path) -> list[float]:
    """The training losses a run logged, iteration by iteration."""
    (path,) = work_dir.glob("*/vis_data/scalars.json")
    return [json.loads(line)["loss"] for line in path.read_text().splitlines()
            if '"loss"' in line]


@pytest.fixture(scope="module")
def searched(shapes, tmp_path_factory):
    """3 trials of a seeded TPE search over a log range, an int range, a bool and a list."""
    from cplugins.tune import tune

    work = tmp_path_factory.mktemp("tune_search")
    lines = []
    study = tune(TEMPLATE, 3, metric=METRIC, search=["per_item_lrate", "batch_size=1:2",
                                                    "use_perclass_regression",
                                                    "anchor_ratios"],
                 fixed=FIXED, data=shapes, seed=0, pruner="none", work_dir=work / "w",
                 storage=f"sqlite:///{work / 'tune.db'}", study_name="search",
                 cfg_options=OPTIONS, progress=lambda study, trial: lines.append(trial.number))
    return study, work, lines


def test_trials_train_with_the_values_sampled_on_the_declared_grids(searched):
    from mmengine.config import Config

    from cplugins.templates import get_template

    study, _, lines = searched
    template = get_template(TEMPLATE)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    assert lines == [0, 1, 2]  # one progress report per finished trial
    for trial in study.trials:
        p = trial.params
        low, high = template.hyperparameter("per_item_lrate").search_range
        assert low <= p["per_item_lrate"] <= high and p["batch_size"] in (1, 2)
        assert p["anchor_ratios"] in ("1", "0.5,1,2", "0.33,0.5,1,2,3")
        # what the trial trained with: the config mmengine dumped into its work dir
        cfg = Config.fromfile(Path(trial.user_attrs["work_dir"]) / f"{TEMPLATE}.py")
        assert cfg.train_dataloader.batch_size == p["batch_size"]
        lr = cfg.optim_wrapper.optimizer.lr
        assert lr == pytest.approx(p["batch_size"] * p["per_item_lrate"])
        head = cfg.model.roi_head.bbox_head
        assert head.reg_class_agnostic is (not p["use_perclass_regression"])
        ratios = cfg.model.rpn_head.anchor_generator.ratios
        assert ",".join(f"{r:g}" for r in ratios) == p["anchor_ratios"]
        assert trial.user_attrs["metrics"][METRIC] == trial.value
        # its own log: mmengine's named singletons (visualizer, logger, message hub) do not
        # carry over from the trial before (they did: every trial logged into trial 0's)
        assert len(losses(Path(trial.user_attrs["work_dir"]))) == 2 // p["batch_size"]
        assert 0 < trial.user_attrs["train_seconds"] < trial.duration.total_seconds()


def test_show_renders_the_best_config_which_reproduces_its_metric(searched, tmp_path):
    """`cplugins tune show --render-best`: a plain mmengine config; a stock Runner trains it to
    the trial's metric and the same losses, iteration by iteration."""
    study, work, _ = searched
    best_file, charts = tmp_path / "best.py", tmp_path / "charts"
    result = run_python("", cwd=tmp_path, args=[
        "-m", "cplugins.cli", "tune", "show", "search", "--storage",
        f"sqlite:///{work / 'tune.db'}", "--render-best", str(best_file), "--charts",
        str(charts)])
    assert result.returncode == 0, result.stderr[-2000:]
    rows = result.stdout.splitlines()
    assert rows[0].split() == ["TRIAL", "STATE", METRIC, "anchor_ratios", "batch_size",
                               "per_item_lrate", "use_perclass_regression", "DURATION", "NOTE"]
    assert [r.split()[:2] for r in rows[1:4]] == [["0", "COMPLETE"], ["1", "COMPLETE"],
                                                 ["2", "COMPLETE"]]
    best = study.best_trial
    assert rows[4].startswith(f"best: trial {best.number} {METRIC}=")
    assert (charts / "history.png").stat().st_size > 1000
    assert (charts / "slice.png").stat().st_size > 1000

    from mmengine.config import Config
    from mmengine.runner import Runner

    cfg = Config.fromfile(best_file)
    cfg.work_dir = str(tmp_path / "again")
    cfg.visualizer.name = "again"  # not a visualizer an earlier test in this process made
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.message_hub.log_scalars[f"val/{METRIC}"].current() == best.value > 0
    trained = losses(Path(best.user_attrs["work_dir"]))
    assert trained and losses(tmp_path / "again") == trained


def test_a_killed_study_is_continued_by_two_processes_that_finish_exactly_n(shapes, tmp_path):
    """Kill `cplugins tune` mid-trial; run it again as two processes on the same journal
    storage: the stale trial is failed (by heartbeat), and together they finish exactly N=3
    (the failed one and two more), no trial number twice. A process that counted only
    finished trials would start a fourth one when its trial ends while the other process's
    is still running; one that never failed the killed trial would stop at its count."""
    import optuna
    from optuna.trial import TrialState

    from cplugins.tune.storage import open_storage

    storage = f"journal:{tmp_path / 'tune.log'}"

    def command(seed: int) -> list[str]:
        return _tune_command(shapes, storage, 3, "--seed", str(seed), "--heartbeat", "1",
                             "--work-dir", str(tmp_path / "w"))

    def load() -> optuna.Study:
        return optuna.load_study(study_name="s", storage=open_storage(storage))

    first = subprocess.Popen(command(0), cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    running = False
    while not running and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.2)  # mid-trial: trial 0 is RUNNING
        if (tmp_path / "tune.log").is_file() and "s" in optuna.get_all_study_names(
                open_storage(storage)):
            running = bool(load().get_trials(states=(TrialState.RUNNING,)))
    assert running, first.stderr.read() if first.poll() is not None else "no trial started"
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert [t.state.name for t in load().trials] == ["RUNNING"]

    processes = [subprocess.Popen(command(seed), cwd=tmp_path, env=_env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for seed in (1, 2)]
    outputs = [p.communicate(timeout=600) for p in processes]
    for process, (_, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]
    study = load()
    assert [(t.number, t.state.name) for t in study.trials] == [
        (0, "FAIL"), (1, "COMPLETE"), (2, "COMPLETE")]
    lines = [line for _, err in outputs for line in err.splitlines()]
    reported = [line.split()[1] for line in lines
                if line.startswith("trial ") and "no heartbeat" not in line]
    assert sorted(reported) == ["1", "2"]  # each trial trained (and reported) once
    stale = [line for line in lines if line.startswith("trial 0 ") and "no heartbeat" in line]
    assert stale, lines  # the killed trial's end is reported too (as soon as it is stale)
    assert any("[3/3]" in line for line in lines), lines


def test_median_pruning_stops_a_trial_below_the_median_at_its_first_validation(shapes,
                                                                               tmp_path):
    """The study has two complete trials whose metric was 0.9 after iteration 1; the next
    trial (a real 2-epoch training) scores less there: the median pruner (`--pruner median`)
    stops it after epoch 1."""
    import optuna

    from cplugins.templates import get_template
    from cplugins.tune import tune
    from cplugins.tune.space import build_space
    from cplugins.tune.storage import open_storage
    from cplugins.tune.study import _overrides, _record, create_study, make_pruner

    fixed = {**FIXED, "num_epochs": "2"}
    url = f"sqlite:///{tmp_path / 'tune.db'}"
    space = build_space(get_template(TEMPLATE), ["per_item_lrate"], fixed)
    record = _record(space, METRIC, shapes, _overrides(OPTIONS))
    study = create_study(open_storage(url), "median", "maximize", record,
                         optuna.samplers.RandomSampler(), make_pruner("median"))
    for value in (0.9, 0.9):  # earlier trials: 0.9 after iteration 1 and at the end
        study.add_trial(optuna.trial.create_trial(
            params={"per_item_lrate": 1e-3}, distributions=space.distributions, value=value,
            intermediate_values={1: value, 2: value}))
    study = tune(TEMPLATE, 3, metric=METRIC, search=["per_item_lrate"], fixed=fixed,
                 data=shapes, seed=0, pruner="median", storage=url, study_name="median",
                 work_dir=tmp_path / "w", cfg_options=OPTIONS)
    trial = study.trials[2]
    assert trial.state.name == "PRUNED"
    (reported,) = trial.intermediate_values.values()  # batch 2 of 2 images: 1 iteration/epoch
    assert list(trial.intermediate_values) == [1] and reported < 0.9
    log = next(Path(trial.user_attrs["work_dir"]).glob("*/*.log")).read_text()
    assert "Epoch(train) [1][1/1]" in log and "Epoch(train) [2]" not in log


def test_a_metric_the_evaluator_never_produces_stops_after_the_first_validation(shapes,
                                                                                tmp_path):
    from cplugins.tune import TuneError, tune

    with pytest.raises(TuneError) as info:
        tune(TEMPLATE, 3, metric="coco/segm_mAP", search=["per_item_lrate"], fixed=FIXED,
             data=shapes, work_dir=tmp_path / "w", cfg_options=OPTIONS)
    assert str(info.value) == (
        "--metric coco/segm_mAP: the evaluator produced coco/bbox_mAP, coco/bbox_mAP_50, "
        "coco/bbox_mAP_75, coco/bbox_mAP_l, coco/bbox_mAP_m, coco/bbox_mAP_s; choose one of "
        "those")
    import optuna

    study = optuna.load_study(study_name=TEMPLATE, storage=f"sqlite:///{tmp_path / 'w/tune.db'}")
    assert [t.state.name for t in study.trials] == ["FAIL"]  # no second trial
    assert study.trials[0].user_attrs["fail_reason"] == str(info.value)


def test_a_trial_that_predicts_no_box_is_complete_with_the_worst_value(shapes, tmp_path):
    """A detector that predicts no box (here: a score threshold no score reaches) is a valid,
    bad trial: COMPLETE with mAP 0 and a note, so the sampler learns from it; it was a FAIL,
    and a study of such trials exited 1. Running the finished study again says there is
    nothing to run."""
    storage = f"sqlite:///{tmp_path / 'tune.db'}"
    command = _tune_command(shapes, storage, 2, "--work-dir", str(tmp_path / "w"),
                            "--cfg-options", "model.test_cfg.rcnn.score_thr=1.01")
    result = subprocess.run(command, cwd=tmp_path, env=_env(), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    import optuna

    study = optuna.load_study(study_name="s", storage=storage)
    assert [(t.state.name, t.value) for t in study.trials] == [("COMPLETE", 0.0)] * 2
    note = "recorded as coco/bbox_mAP=0 (the worst value): validation at iteration "
    assert all(t.user_attrs["note"].startswith(note) and "produced no metrics" in
               t.user_attrs["note"] for t in study.trials)
    trial_lines = [line for line in result.stderr.splitlines() if line.startswith("trial ")]
    assert len(trial_lines) == 2 and all(f"coco/bbox_mAP=0 ({note}" in line
                                         for line in trial_lines), trial_lines
    shown = subprocess.run([sys.executable, "-m", "cplugins.cli", "tune", "show", "s",
                            "--storage", storage], cwd=tmp_path, env=_env(),
                           capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0 and shown.stdout.count(note) == 2, shown.stdout
    again = subprocess.run(command, cwd=tmp_path, env=_env(), capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "study 's' has 2 trials already (--trials 2): nothing to run" in again.stderr
    assert len(optuna.load_study(study_name="s", storage=storage).trials) == 2
