"""Experiment ids: a template's training run records its id and last checkpoint, `cplugins runs`
lists it, and ``continue_from_eid`` starts a new run from that checkpoint."""
from __future__ import annotations

import json

import pytest
from helpers import run_python

from cplugins.templates import TemplateValidationError
from cplugins.templates.experiments import ENV_RUNS_ROOT, RECORD_NAME
from cplugins.templates.rendering import render

NAME = "Clarifai_InceptionBatchNorm"
TINY = dict(image_size=32, batch_size=2, num_epochs=1, init_epochs=1, step_epochs=1)


@pytest.mark.slow
def test_run_records_its_id_and_continue_from_eid_uses_its_checkpoint(tmp_path, monkeypatch):
    from mmengine.runner import Runner

    import cplugins.all  # noqa: F401
    from cplugins.data.shapes import make_shapes_classification

    data = make_shapes_classification(tmp_path / "cls", num_train=4, num_val=3, image_size=32,
                                      seed=1)["data_root"]
    runs = tmp_path / "work_dirs"
    monkeypatch.setenv(ENV_RUNS_ROOT, str(runs))
    cfg = render(NAME, TINY, data=data)
    for key in ("train_dataloader", "val_dataloader", "test_dataloader"):
        cfg[key].update(num_workers=0, persistent_workers=False)
    cfg.work_dir = str(runs / NAME)
    Runner.from_cfg(cfg).train()

    records = list(runs.glob(f"{NAME}/*/{RECORD_NAME}"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert record["template"] == f"classification/{NAME}"
    assert record["hyperparameters"]["image_size"] == 32
    assert record["last_checkpoint"] == str(runs / NAME / "epoch_1.pth")
    # the work dir's copy of the config is named after the template
    assert (runs / NAME / f"{NAME}.py").is_file()

    listed = run_python("", cwd=tmp_path, args=["-m", "cplugins.cli", "runs", "--root",
                                                 str(runs)])
    assert listed.returncode == 0, listed.stderr
    row = listed.stdout.splitlines()[1].split()
    assert row[0] == record["eid"] and row[1] == f"classification/{NAME}"
    assert row[-1] == record["last_checkpoint"]

    again = render(NAME, dict(TINY, continue_from_eid=record["eid"]), data=data)
    assert again.load_from == record["last_checkpoint"]
    with pytest.raises(TemplateValidationError) as info:
        render(NAME, {"continue_from_eid": "20200101_000000-0000"}, data=data)
    assert info.value.errors == [
        f"continue_from_eid='20200101_000000-0000': no run with this id under {runs}/ "
        f"(latest: {record['eid']}); allowed: '' (none) or the id of a recorded run "
        f"(`cplugins runs`; {ENV_RUNS_ROOT} sets the folder)"]
