"""The sizes training actually sees: each rendered training pipeline (and YOLOX's batch-level
random resize) run on the synthetic shapes images (96 x 128 px)."""
from __future__ import annotations

import random

import pytest
import torch

from cplugins.templates.rendering import render

HEIGHT, WIDTH = 96, 128


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> str:
    from cplugins.shapes import make_shapes_detection

    root = tmp_path_factory.mktemp("shapes")
    return make_shapes_detection(root / "det", num_train=3, num_val=1,
                                 image_size=(HEIGHT, WIDTH), seed=5)["data_root"]


def _train_dataset(cfg):
    from mmengine.registry import DATASETS, DefaultScope

    import cplugins.all  # noqa: F401

    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        return DATASETS.build(cfg.train_dataloader.dataset)


def _shapes_out(cfg, draws: int) -> set[tuple[int, int]]:
    """(height, width) of the training pipeline's output over ``draws`` samples."""
    dataset = _train_dataset(cfg)
    random.seed(0)
    return {tuple(dataset[i % len(dataset)]["inputs"].shape[-2:]) for i in range(draws)}


def _shorter_side_for(scale: tuple[int, int]) -> int:
    """Shorter side mmdet's keep-ratio Resize gives a 96 x 128 image for ``scale``."""
    factor = min(max(scale) / max(HEIGHT, WIDTH), min(scale) / min(HEIGHT, WIDTH))
    return int(HEIGHT * factor + 0.5)


def test_msc10_without_random_resize_trains_at_image_size(shapes):
    cfg = render("Detection_MSC10", {"image_size": [64], "random_resize_lower": 0,
                                     "random_resize_upper": 0}, data=shapes)
    assert _shapes_out(cfg, 4) == {(64, round(64 * WIDTH / HEIGHT))}


def test_msc10_trains_at_its_ten_scales(shapes):
    cfg = render("Detection_MSC10", {"image_size": [64], "random_resize_lower": 48,
                                     "random_resize_upper": 120}, data=shapes)
    sides = {round(48 + i * (120 - 48) / 9) for i in range(10)}
    seen = {h for h, _ in _shapes_out(cfg, 40)}
    assert seen <= sides and len(seen) >= 5, seen


def test_random_resize_bounds_the_shorter_side(shapes):
    cfg = render("detection/Clarifai_InceptionV2", {"image_size": [64], "random_resize_lower": 48,
                                                    "random_resize_upper": 80}, data=shapes)
    seen = {h for h, _ in _shapes_out(cfg, 20)}
    assert min(seen) >= 48 and max(seen) <= 80 and len(seen) > 3, seen
    fixed = render("detection/Clarifai_InceptionV2", {"image_size": [64], "random_resize_lower": 0,
                                                      "random_resize_upper": 0}, data=shapes)
    assert {h for h, _ in _shapes_out(fixed, 3)} == {64}


def test_two_random_resize_values_are_exact_sizes(shapes):
    cfg = render("detection/Clarifai_InceptionV2", {
        "image_size": [64, 80], "keep_aspect_ratio": False, "random_resize_lower": "48,64",
        "random_resize_upper": [80, 96]}, data=shapes)
    seen = _shapes_out(cfg, 20)
    assert all(48 <= h <= 80 and 64 <= w <= 96 for h, w in seen) and len(seen) > 3, seen
    msc = render("Detection_MSC10", {"image_size": [64, 80], "keep_aspect_ratio": False,
                                     "random_resize_lower": [48, 60],
                                     "random_resize_upper": [84, 96]}, data=shapes)
    expected = {(48 + 4 * i, 60 + 4 * i) for i in range(10)}
    seen = _shapes_out(msc, 30)
    assert seen <= expected and len(seen) >= 5, seen


def _yolox_batch_sides(cfg, steps: int) -> set[int]:
    """Sides of the batches YOLOX's data preprocessor gives over ``steps`` resize points."""
    from mmengine.logging import MessageHub
    from mmengine.registry import MODELS, DefaultScope

    dataset = _train_dataset(cfg)
    random.seed(0)
    item = dataset[0]
    assert tuple(item["inputs"].shape[-2:]) == (cfg.template["hyperparameters"]["image_size"],) * 2
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        preprocessor = MODELS.build(cfg.model.data_preprocessor)
    hub = MessageHub.get_current_instance()
    sides = set()
    for _ in range(steps):
        hub.update_info("iter", 9)  # the resize interval is 10: a new size after this batch
        batch = preprocessor(dict(inputs=[item["inputs"]], data_samples=[item["data_samples"]]),
                             training=True)
        sides.update(batch["inputs"].shape[-2:])
    return sides


@pytest.mark.parametrize("image_size, allowed", [(128, {96, 128, 160}), (256, {192, 224, 256,
                                                                           288, 320})])
def test_yolox_batch_random_resize_follows_image_size(shapes, image_size, allowed):
    cfg = render("MMDetection_YOLOX", {"model_size": "tiny", "image_size": image_size},
                 data=shapes)
    torch.manual_seed(0)
    sides = _yolox_batch_sides(cfg, 12)
    assert sides <= allowed and len(sides) >= 2, sides


def test_yolox_explicit_random_resize_is_used(shapes):
    cfg = render("MMDetection_YOLOX", {"model_size": "tiny", "image_size": 128,
                                       "random_resize_lower": 192, "random_resize_upper": 224},
                 data=shapes)
    assert _yolox_batch_sides(cfg, 6) <= {128, 192, 224}


def test_yolox_default_range_is_mmdets():
    cfg = render("MMDetection_YOLOX")
    augment = cfg.model.data_preprocessor.batch_augments[0]
    assert tuple(augment.random_size_range) == (480, 800)
