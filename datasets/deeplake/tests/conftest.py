"""Fixtures of the cplugins-deeplake tests: a tiny shapes COCO folder and its Deep Lake copy
(real datasets on disk, built once per session)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import cplugins  # noqa: F401  (before mmdet: arms the compat fixes)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread (as necks/augfpn's tests): tiny tensors run as fast, and on a
    shared 2-core machine two threads were several times slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def shapes_coco(tmp_path_factory) -> dict:
    """4 train / 2 val synthetic shapes images of 64x96 as a COCO folder."""
    from cplugins.shapes import make_shapes_detection

    root = tmp_path_factory.mktemp("deeplake_shapes_coco")
    return make_shapes_detection(root, num_train=4, num_val=2, image_size=(64, 96), seed=3,
                                 min_objects=1, max_objects=3)


@pytest.fixture(scope="session")
def shapes_deeplake(shapes_coco, tmp_path_factory) -> Path:
    """:func:`shapes_coco` converted to Deep Lake: ``<root>/train``, ``<root>/val``."""
    from cplugins_deeplake.convert import convert

    root = tmp_path_factory.mktemp("deeplake_shapes") / "dl"
    convert(shapes_coco["data_root"], str(root), "deeplake", progress=False)
    return root


@pytest.fixture()
def deeplake_copy(shapes_deeplake, tmp_path) -> Path:
    """A private copy of the train split, for tests that write to it."""
    target = tmp_path / "train"
    shutil.copytree(shapes_deeplake / "train", target)
    return target


def _pipeline(load: str, meta_keys: tuple = ()) -> list[dict]:
    keys = ("img_id", "img_path", "ori_shape", "img_shape", "scale_factor", "flip",
            "flip_direction") + meta_keys
    return [dict(type=load), dict(type="LoadAnnotations", with_bbox=True),
            dict(type="Resize", scale=(128, 96), keep_ratio=True),
            dict(type="RandomFlip", prob=0.0), dict(type="PackDetInputs", meta_keys=keys)]


@pytest.fixture()
def det_pipeline():
    """``det_pipeline(load)``: mmdet's detection train pipeline (no flip) after ``load``."""
    return _pipeline
