"""Checkpoints: bit-exact resume after SIGKILL, atomic writes under a failing disk, strict
loading in tools/test.py and --resume, one clear line for unusable files (real tools)."""
from __future__ import annotations

import os
import shutil

import pytest
import torch
from helpers import run_python
from training_setup import (
    TEST,
    error_lines,
    output,
    train,
    train_and_kill_after_first_checkpoint,
    write_tiny_config,
)

from cplugins.training.loading import read_checkpoint

pytestmark = pytest.mark.slow


def _state(path) -> dict:
    return read_checkpoint(str(path))["state_dict"]  # weights-only, cplugins' allowlist


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return write_tiny_config(tmp_path_factory.mktemp("ckpt"), max_iters=6, interval=2)


@pytest.fixture(scope="module")
def uninterrupted(config, tmp_path_factory):
    """6 iterations, checkpoints at 2, 4, 6."""
    work_dir = tmp_path_factory.mktemp("uninterrupted")
    result = train(config, work_dir)
    assert result.returncode == 0, output(result)[-3000:]
    return work_dir


def test_resume_after_sigkill_is_bit_identical(config, uninterrupted, tmp_path):
    work_dir = tmp_path / "killed"
    train_and_kill_after_first_checkpoint(config, work_dir)
    resumed_from = (work_dir / "last_checkpoint").read_text().strip()
    assert os.path.basename(resumed_from) in ("iter_2.pth", "iter_4.pth")

    result = train(config, work_dir, "--resume")
    assert result.returncode == 0, output(result)[-3000:]
    assert "resumed" in output(result)
    expected, got = _state(uninterrupted / "iter_6.pth"), _state(work_dir / "iter_6.pth")
    assert expected.keys() == got.keys()
    differing = [k for k in expected if not torch.equal(expected[k], got[k])]
    assert not differing, f"{len(differing)} of {len(expected)} tensors differ: {differing[:5]}"


def test_failed_checkpoint_write_keeps_the_last_good_one(uninterrupted, config, tmp_path):
    """The disk 'fills up' (a file size limit: writes past it fail with EFBIG) while the
    iteration-4 checkpoint is written: the error says so, iteration 2 stays the last one."""
    work_dir = tmp_path / "work"
    work_dir.mkdir()
    good = work_dir / "iter_2.pth"
    shutil.copy(uninterrupted / "iter_2.pth", good)
    (work_dir / "last_checkpoint").write_text(str(good))
    size = good.stat().st_size
    result = train(config, work_dir, "--resume", fsize_limit=size // 2)

    assert result.returncode != 0, output(result)[-3000:]
    errors = error_lines(result)
    assert len(errors) == 1, output(result)[-3000:]
    assert "could not write checkpoint" in errors[0] and "iter_4.pth" in errors[0]
    assert f"last good checkpoint: {good}" in errors[0]
    assert sorted(p.name for p in work_dir.glob("*.pth")) == ["iter_2.pth"]
    assert not list(work_dir.glob(".*tmp*"))
    assert (work_dir / "last_checkpoint").read_text().strip() == str(good)
    assert torch.equal(_state(good)["backbone.conv1.weight"],
                       _state(uninterrupted / "iter_2.pth")["backbone.conv1.weight"])


def test_resume_with_nothing_to_resume_fails(config, tmp_path):
    result = train(config, tmp_path / "empty", "--resume")
    assert result.returncode != 0
    assert error_lines(result) == [
        f"error: --resume: nothing to resume in {tmp_path / 'empty'} (no last_checkpoint file); "
        "drop --resume to start from scratch, give --resume CKPT, or use --resume-or-start"]
    assert "data check" not in output(result)  # refused before the data is checked
    assert "Did not find last_checkpoint" not in output(result)  # no mmengine line first


def test_unusable_checkpoint_is_one_line_before_anything_is_built(uninterrupted, config,
                                                                  tmp_path):
    data = (uninterrupted / "iter_2.pth").read_bytes()
    truncated, empty = tmp_path / "truncated.pth", tmp_path / "empty.pth"
    truncated.write_bytes(data[: len(data) // 3])   # what a kill during a plain write leaves
    empty.write_bytes(b"")
    result = run_python("", args=[TEST, str(config), str(truncated)])
    assert result.returncode != 0
    assert error_lines(result) == [
        f"error: checkpoint {truncated} ({len(data) // 3} bytes) is truncated or not a PyTorch "
        "checkpoint: PytorchStreamReader failed reading zip archive: failed finding central "
        "directory"], output(result)[-2000:]
    assert "Traceback" not in result.stderr

    result = train(config, tmp_path / "work", "--resume", str(empty))
    assert result.returncode != 0
    assert error_lines(result) == [
        f"error: checkpoint {empty} is empty (0 bytes): an interrupted or failed save; use an "
        "earlier checkpoint"], output(result)[-2000:]
    assert not list((tmp_path / "work").glob("*/*.log"))  # before the runner was built


def test_test_refuses_a_checkpoint_of_another_model(uninterrupted, config, tmp_path):
    checkpoint = read_checkpoint(str(uninterrupted / "iter_6.pth"))
    # the same detector with 5 classes: other classification and regression layer shapes
    state = checkpoint["state_dict"]
    state["roi_head.bbox_head.fc_cls.weight"] = torch.zeros(6, 64)
    state["roi_head.bbox_head.fc_cls.bias"] = torch.zeros(6)
    state["roi_head.bbox_head.fc_reg.weight"] = torch.zeros(20, 64)
    state["roi_head.bbox_head.fc_reg.bias"] = torch.zeros(20)
    checkpoint["meta"]["dataset_meta"] = dict(classes=("a", "b", "c", "d", "e"))
    five = tmp_path / "five.pth"
    torch.save(checkpoint, five)
    result = run_python("", args=[TEST, str(config), str(five), "--work-dir",
                                  str(tmp_path / "t")])
    assert result.returncode != 0
    message = result.stderr
    assert "does not match the model: 0 keys missing, 0 unexpected, 4 with another shape" \
        in message, message[-3000:]
    assert "roi_head.bbox_head.fc_cls.weight [6, 64] vs [4, 64]" in message
    assert "config tiny_frcnn.py" in message and "5 classes (a, b, c, d, e)" in message
    assert "coco/bbox_mAP" not in output(result)

    # --allow-partial: today's behaviour (evaluated, with the summary as a warning)
    result = run_python("", args=[TEST, str(config), str(five), "--allow-partial",
                                  "--work-dir", str(tmp_path / "t")])
    assert result.returncode == 0, output(result)[-3000:]
    assert "warning: checkpoint" in result.stderr and "coco/bbox_mAP" in output(result)


def test_resume_refuses_a_plain_state_dict(config, tmp_path):
    """A torchvision-style state dict (no meta): nothing matches, refused before training."""
    plain = tmp_path / "plain.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(10, 512)},
               plain)
    result = train(config, tmp_path / "work", "--resume", str(plain))
    assert result.returncode != 0
    errors = error_lines(result)
    assert len(errors) == 1, output(result)[-3000:]
    assert errors[0].startswith(f"error: checkpoint {plain} does not match the model: ")
    assert "2 unexpected, 0 with another shape (0 match)" in errors[0]
    assert "  unexpected: conv1.weight, fc.weight" in result.stderr
    assert "the checkpoint has no meta (a plain state dict" in result.stderr
    assert not list((tmp_path / "work").glob("iter_*.pth"))


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_weights_only_protection_still_refuses_code(tmp_path):
    from cplugins.training.errors import CheckpointFileError

    evil = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "x": _Evil(tmp_path / "pwned")}, evil)  # saving runs nothing
    with pytest.raises(CheckpointFileError) as caught:
        read_checkpoint(str(evil))   # what tools/test.py and --resume run first
    assert str(caught.value) == (
        f"checkpoint {evil} was refused by weights-only loading (it holds objects other "
        "than tensors and plain data): Trying to load unsupported GLOBAL posix.system whose "
        "module posix is blocked.")
    assert not (tmp_path / "pwned").exists()
