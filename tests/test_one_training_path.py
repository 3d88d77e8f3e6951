"""One preparation for every run: a tuning trial trains exactly the config ``tools/train.py``
trains for the same template values (work dir, synthetic data, safeguards, lock included)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VALUES = {"model_size": "tiny", "image_size": 128, "batch_size": 2, "num_epochs": 1,
          "per_item_lrate": 0.0003}


@pytest.fixture()
def tools(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "tools"))
    import common
    import train

    return common, train


@pytest.mark.parametrize("launcher", ["none", "pytorch"])
def test_a_tuning_trial_trains_the_config_tools_train_would(tools, tmp_path, launcher,
                                                            monkeypatch):
    common, train = tools
    from cplugins.templates import get_template
    from cplugins.tune.objective import TrialSetup, prepare
    from cplugins.tune.space import build_space

    monkeypatch.chdir(tmp_path)  # the synthetic set goes under data/ here
    work_dir = str(tmp_path / "run")
    sets = [f"{k}={v}" for k, v in VALUES.items()]
    args = train.parse_args(["--template", "MMDetection_YOLOX", "--set", *sets, "--no-progress",
                             "--work-dir", work_dir, "--launcher", launcher])
    trained = train.train_config(args, common.template_config("MMDetection_YOLOX", args.set))

    template = get_template("MMDetection_YOLOX")
    setup = TrialSetup(space=build_space(template, {}), metric="coco/bbox_mAP",
                       work_dir=str(tmp_path / "study"), launcher=launcher)
    trial = prepare(setup.render(VALUES), work_dir, launcher)

    assert trial.to_dict() == trained.to_dict()
    hooks = {h["type"] for h in trial.custom_hooks}
    assert {"NanGuardHook", "RandomStateHook", "PluginLockHook"} <= hooks  # safeguards, lock
    assert "ProgressHook" not in hooks
    assert trial.default_hooks.checkpoint.type == "AtomicCheckpointHook"
    assert "cplugins.templates.runtime" in trial.custom_imports["imports"]
    assert ("model_wrapper_cfg" in trial) == (launcher != "none")


def test_a_safeguard_added_to_the_one_preparation_reaches_every_caller(tools, tmp_path,
                                                                        monkeypatch):
    """tools/train.py, tools/test.py's preparation and tuning trials all go through
    prepare_for_training: a change there shows in all of them."""
    common, train = tools
    import cplugins.training.prepare as prepare_module
    from cplugins.tune.objective import prepare

    original = prepare_module.add_custom_hook

    def add_hook(cfg, hook_type):
        original(cfg, hook_type)
        if hook_type == "PluginLockHook":
            original(cfg, "NewSafeguardHook")

    monkeypatch.setattr(prepare_module, "add_custom_hook", add_hook)
    monkeypatch.chdir(tmp_path)
    args = train.parse_args(["--template", "MMDetection_YOLOX", "--no-progress",
                             "--work-dir", str(tmp_path / "a")])
    trained = train.train_config(args, common.template_config("MMDetection_YOLOX", []))
    trial = prepare(common.template_config("MMDetection_YOLOX", []), str(tmp_path / "b"), "none")
    tested = prepare_module.prepare_for_training(common.template_config("MMDetection_YOLOX", []),
                                                 work_dir=str(tmp_path / "c"), purpose="test")
    for cfg in (trained, trial, tested):
        assert "NewSafeguardHook" in {h["type"] for h in cfg.custom_hooks}


def test_bad_purpose_is_refused():
    from mmengine.config import Config

    from cplugins.training.prepare import prepare_for_training

    with pytest.raises(ValueError, match="purpose='eval': 'train' or 'test'"):
        prepare_for_training(Config({}), purpose="eval")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))
