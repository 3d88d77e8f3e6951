"""`cplugins tune`: the search space from the templates' declarations and every bad input
(no training here: each bad input stops before a trial starts; tests/test_tune_train.py trains).
"""
from __future__ import annotations

import pytest
from helpers import run_python

from cplugins.templates import get_template
from cplugins.templates.model import Hyperparameter, TemplateError
from cplugins.tune.space import TuneError, build_space


def _sample(space, n: int, seed: int = 0) -> list[dict]:
    """``n`` value sets drawn by a seeded random sampler from an in-memory study."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    drawn = []
    for _ in range(n):
        trial = study.ask()
        drawn.append(space.suggest(trial))
        study.tell(trial, 0.0)
    return drawn


def test_sampled_values_lie_on_the_declared_grids():
    """Steps (from the declared minimum), log ranges, choices and list choices: every value
    drawn is valid for the template, and the values cover the grid's ends."""
    template = get_template("MMDetection_YOLOX")
    space = build_space(template, ["image_size=128:288", "per_item_lrate", "model_size",
                                   "batch_size=2:4"], {"num_epochs": "3"})
    drawn = _sample(space, 200)
    sizes = {d["image_size"] for d in drawn}
    assert sizes == {128, 160, 192, 224, 256, 288}
    assert {d["batch_size"] for d in drawn} == {2, 3, 4}
    assert {d["model_size"] for d in drawn} == set(template.hyperparameter("model_size").choices)
    lrates = [d["per_item_lrate"] for d in drawn]
    low, high = template.hyperparameter("per_item_lrate").search_range
    assert all(low <= v <= high for v in lrates)
    # log-uniform: about as many draws per decade (a uniform draw would put ~90 % in the top one)
    middle = sum(v < low * 10 for v in lrates)
    assert 60 <= middle <= 140, middle
    assert all(d["num_epochs"] == 3 for d in drawn)
    for d in drawn:
        template.validate(d)

    faster = get_template("MMDetection_FasterRCNN")
    lists = build_space(faster, ["anchor_ratios", "use_perclass_regression"])
    drawn = _sample(lists, 40)
    declared = faster.hyperparameter("anchor_ratios").search_choices
    assert {tuple(d["anchor_ratios"]) for d in drawn} == {tuple(c) for c in declared}
    assert {d["use_perclass_regression"] for d in drawn} == {False, True}


def test_default_search_set_is_what_the_template_marks_tunable():
    space = build_space(get_template("MMDetection_FasterRCNN"), fixed={"batch_size": 2})
    assert sorted(space.distributions) == ["per_item_lrate"]
    assert space.distributions["per_item_lrate"].log
    assert space.fixed == {"batch_size": 2}


@pytest.mark.parametrize("kwargs, message", [
    (dict(kind="str", default="", tunable=True),
     "hyperparameter x: a tunable string needs search_choices"),
    (dict(kind="float", default=0.1, minimum=0.0, maximum=1.0, log=True),
     "hyperparameter x: a log-scale search needs a lower bound > 0 (minimum or search_range)"),
    (dict(kind="float", default=0.1, minimum=0.0, maximum=1.0, search_range=(0.5, 2.0)),
     "hyperparameter x: search_range end 2 is above the maximum"),
    (dict(kind="int", default=32, minimum=32, maximum=128, step=32, search_range=(32, 40)),
     "hyperparameter x: search_range end 40 is off the step grid (nearest: 32 or 64)"),
    (dict(kind="bool", default=True, log=True),
     "hyperparameter x: log and search_range are for kinds int and float"),
    (dict(kind="int_list", default=[1], minimum=1, search_choices=([1], [0])),
     "hyperparameter x: search choice x=[0]"),
])
def test_bad_search_declarations_are_refused(kwargs, message):
    with pytest.raises(TemplateError) as info:
        Hyperparameter("x", description="", minimum=kwargs.pop("minimum", None),
                       maximum=kwargs.pop("maximum", 8), **kwargs)
    assert str(info.value).startswith(message), str(info.value)


@pytest.mark.parametrize("search, fixed, message", [
    (["per_item_lrate=0:1e-3"], {}, "--search per_item_lrate=0:0.001: per_item_lrate is "
     "searched on a log scale, which needs LOW > 0"),
    (["batch_size=8:2"], {}, "--search batch_size=8:2: LOW must be below HIGH"),
    (["random_resize_lower=0"], {}, "--search 'random_resize_lower=0': a range must look like"),
    (["frozen_stages=1:9"], {}, "--search frozen_stages: range end frozen_stages=9: above the "
     "maximum; allowed: an integer from 1 to 4"),
    (["batch_size=1:99"], {}, "--search batch_size: range end batch_size=99: above the maximum"),
    (["load_from"], {}, "--search load_from: a str is searched among the values the template "
     "declares (search_choices), and MMDetection_FasterRCNN declares none for load_from"),
    (["image_size"], {}, "--search image_size: a list[int] is searched among"),
    (["keep_aspect_ratio=0:1"], {}, "--search keep_aspect_ratio=0:1: a range is for int and "
     "float hyperparameters; keep_aspect_ratio is a bool"),
    (["batch_size=2"], {}, "--search 'batch_size=2': a range must look like batch_size=LOW:HIGH"),
    ([], {"batch_size": "0"}, "--set batch_size=0: below the minimum; allowed: an integer from "
     "1 to 32"),
    ([], {"per_item_lrate": "1e-3", "batch_size": 2}, "template MMDetection_FasterRCNN marks "
     "no hyperparameter tunable (or --set fixes them all)"),
])
def test_bad_search_input_is_one_clear_error(search, fixed, message):
    with pytest.raises(TuneError) as info:
        build_space(get_template("MMDetection_FasterRCNN"), search, fixed)
    assert str(info.value).startswith(message), str(info.value)


def _tune(tmp_path, *args: str):
    result = run_python("", cwd=tmp_path, args=["-m", "cplugins.cli", "tune", *args])
    return result.returncode, result.stdout, result.stderr.strip().splitlines()


BASE = ("--trials", "2", "--metric", "coco/bbox_mAP")


def test_bad_input_on_the_command_line_exits_2_with_one_line_and_starts_nothing(tmp_path):
    code, _, err = _tune(tmp_path, "NoSuchTemplate", *BASE)
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and \
        "NoSuchTemplate" in err[0], err
    code, _, err = _tune(tmp_path, "MMDetection_FasterRCNN", *BASE, "--search", "lrate")
    assert (code, err) == (2, [
        "error: --search lrate: template MMDetection_FasterRCNN has no such hyperparameter "
        "(did you mean 'per_item_lrate'?); it has: image_size, keep_aspect_ratio, "
        "max_aspect_ratio, batch_size, num_epochs, min_samples_per_epoch, per_item_lrate, "
        "pretrained_weights, frozen_stages, random_resize_lower, random_resize_upper, "
        "load_from, base_model, pretrain_base_data, use_perclass_regression, anchor_ratios, "
        "continue_from_eid"])
    code, _, err = _tune(tmp_path, "MMDetection_FasterRCNN", *BASE, "--search", "batch_size",
                         "--set", "batch_size=4")
    assert (code, err) == (2, ["error: --search batch_size is also fixed with --set "
                                "batch_size=4; search it or fix it, not both"])
    code, _, err = _tune(tmp_path, "MMDetection_FasterRCNN", "--metric", "coco/bbox_mAP")
    assert (code, err) == (2, ["error: cplugins tune MMDetection_FasterRCNN: give --trials N"])
    for url, reason in (("sqlite:////no/such/folder/t.db", "folder /no/such/folder does not "
                                                            "exist"),
                        ("nosuchdb://x", "cannot open it: NoSuchModuleError"),
                        ("journal:/no/such/folder/t.log", "folder /no/such/folder does not "
                                                          "exist")):
        code, _, err = _tune(tmp_path, "MMDetection_FasterRCNN", *BASE, "--storage", url)
        assert code == 2 and len(err) == 1, err
        assert err[0].startswith(f"error: --storage {url}: {reason}"), err
    assert not list(tmp_path.iterdir())  # nothing written
    code, _, err = _tune(tmp_path, "MMDetection_FasterRCNN", *BASE, "--data", "/no/such",
                         "--work-dir", "w")
    assert (code, err) == (2, ["error: --data '/no/such': no such directory; give the folder "
                                "of a COCO-format dataset (annotations/instances_train*.json, "
                                "instances_val*.json and the image folders)"])
    import optuna

    assert optuna.get_all_study_names(f"sqlite:///{tmp_path / 'w' / 'tune.db'}") == []


def test_a_study_made_for_another_direction_or_space_is_refused_untouched(tmp_path):
    """The existing study keeps its trials count (0), direction and record."""
    import optuna

    from cplugins.tune.space import build_space as space_of
    from cplugins.tune.storage import open_storage
    from cplugins.tune.study import _overrides, _record, create_study, make_pruner

    url = f"sqlite:///{tmp_path / 'tune.db'}"
    space = space_of(get_template("MMDetection_FasterRCNN"), ["per_item_lrate"])
    record = _record(space, "coco/bbox_mAP", None, _overrides(None))
    create_study(open_storage(url), "s", "maximize", record,
                 optuna.samplers.RandomSampler(), make_pruner("none"))
    cases = [
        (("--direction", "minimize", "--search", "per_item_lrate"),
         "error: study 's' exists with --direction maximize; this run asks for minimize: "
         "give another --study name, or --direction maximize"),
        (("--search", "per_item_lrate", "batch_size"),
         "error: study 's' exists with another search space (--search): "),
        (("--search", "per_item_lrate", "--set", "num_epochs=2"),
         "error: study 's' exists with another fixed values (--set): {} (this run: "
         "{'num_epochs': 2})"),
    ]
    for args, message in cases:
        code, _, err = _tune(tmp_path, "MMDetection_FasterRCNN", *BASE, "--storage", url,
                             "--study", "s", *args)
        assert code == 2 and len(err) == 1 and err[0].startswith(message), err
    study = optuna.load_study(study_name="s", storage=url)
    assert study.trials == [] and study.direction.name == "MAXIMIZE"
    assert study.user_attrs["cplugins"] == record


def test_building_the_command_line_imports_no_optuna():
    """`cplugins list` and the other commands do not pay for optuna (nor torch)."""
    result = run_python("import sys\nfrom cplugins.cli import build_parser\nbuild_parser()\n"
                        "print(sorted(m for m in ('optuna', 'sqlalchemy', 'torch') "
                        "if m in sys.modules))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_grid_sampler_visits_every_combination_once():
    import optuna

    from cplugins.tune.study import make_sampler

    template = get_template("MMDetection_FasterRCNN")
    space = build_space(template, ["batch_size=1:3", "use_perclass_regression"])
    study = optuna.create_study(sampler=make_sampler("grid", space, seed=0))
    seen = []

    def objective(trial) -> float:
        values = space.suggest(trial)
        seen.append((values["batch_size"], values["use_perclass_regression"]))
        return 0.0

    study.optimize(objective, n_trials=10)  # the grid stops the study after its 6 points
    assert sorted(seen) == [(b, r) for b in (1, 2, 3) for r in (False, True)]
    with pytest.raises(TuneError) as info:
        make_sampler("grid", build_space(template, ["per_item_lrate"]), seed=0)
    assert str(info.value).startswith("--sampler grid: per_item_lrate is a continuous range")


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_a_trial_killed_before_its_first_heartbeat_is_failed_and_not_counted(tmp_path, kind,
                                                                           capsys):
    """A process killed between creating its trial and the trial's first heartbeat leaves a
    RUNNING trial with no heartbeat at all; Optuna's RDB storage never calls such a trial
    stale, so it stayed RUNNING for ever and counted as one of the study's N trials. Once
    older than the grace period it is failed, and the study goes on (here: N=1, nothing to
    train)."""
    import time

    import optuna

    from cplugins.shapes import make_shapes_detection
    from cplugins.tune import tune
    from cplugins.tune.storage import open_storage
    from cplugins.tune.study import _overrides, _record, create_study, make_pruner

    data = make_shapes_detection(tmp_path / "det", num_train=1, num_val=1,
                                 image_size=(64, 64))["data_root"]
    url = (f"sqlite:///{tmp_path / 'tune.db'}" if kind == "sqlite"
           else f"journal:{tmp_path / 'tune.log'}")
    space = build_space(get_template("MMDetection_FasterRCNN"), ["per_item_lrate"])
    record = _record(space, "coco/bbox_mAP", data, _overrides(None))
    study = create_study(open_storage(url, heartbeat=1), "s", "maximize", record,
                         optuna.samplers.RandomSampler(), make_pruner("none"))
    study.ask()  # RUNNING, no heartbeat yet: its process is killed here
    time.sleep(2.5)  # past the grace period (twice the heartbeat)
    study = tune("MMDetection_FasterRCNN", 1, metric="coco/bbox_mAP", search=["per_item_lrate"],
                 data=data, storage=url, study_name="s", heartbeat=1, pruner="none",
                 work_dir=tmp_path / "w")
    assert [t.state.name for t in study.trials] == ["FAIL"]
    assert "study 's' has 1 trials already (--trials 1): nothing to run" in capsys.readouterr().err
    from cplugins.tune.show import format_table

    killed = format_table(study).splitlines()[1]
    assert killed.startswith("0 ") and killed.endswith("its process stopped (no heartbeat)")


def test_a_second_process_with_the_same_seed_samples_other_trials(tmp_path, capsys):
    """Two processes (or a rerun) on one study with the same --seed sampled the same trials;
    the second now samples with a seed derived from it, and says so."""
    import optuna

    from cplugins.tune.storage import open_storage
    from cplugins.tune.study import claim_seed

    study = optuna.create_study(study_name="s", storage=open_storage(
        f"sqlite:///{tmp_path / 'tune.db'}"))
    seeds = [claim_seed(study, 3), claim_seed(study, 3), claim_seed(study, 4)]
    assert seeds[0] == 3 and seeds[1] not in (3, 4) and seeds[2] == 4
    assert capsys.readouterr().err.splitlines() == [
        f"--seed 3 was given to 1 earlier run(s) of study 's': this process samples with seed "
        f"{seeds[1]}, so that it does not repeat their trials"]
    space = build_space(get_template("MMDetection_FasterRCNN"), ["per_item_lrate"])
    values = []
    for seed in seeds[:2]:
        sampler = optuna.samplers.TPESampler(seed=seed)
        trial = optuna.create_study(sampler=sampler).ask(space.distributions)
        values.append(trial.params["per_item_lrate"])
    assert values[0] != values[1]
