"""mmseg sets: converted losslessly both ways, DeepLakeSegDataset gives the samples
BaseSegDataset gives on the folder, and a model trained from Deep Lake validates with the same
IoU metrics as on the folder copy."""
from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="module")
def shapes_seg(tmp_path_factory) -> dict:
    """4 train / 2 val synthetic 64x64 segmentation images (mmseg layout), and the Deep Lake
    copy at ``info['deeplake']``."""
    from cplugins_deeplake.convert import convert

    from cplugins.shapes import make_shapes_segmentation

    root = tmp_path_factory.mktemp("deeplake_seg")
    info = make_shapes_segmentation(root / "folder", num_train=4, num_val=2,
                                    image_size=(64, 64), seed=5)
    assert convert(info["data_root"], str(root / "dl"), progress=False) == [
        str(root / "dl" / s) for s in ("train", "val")]
    return dict(info, deeplake=root / "dl")


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _encoded(array: np.ndarray, fmt: str, **kwargs) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    image = Image.fromarray(array)
    if kwargs.pop("palette", False):
        image = image.convert("P")
        image.putpalette([0, 0, 0, 200, 10, 10, 10, 200, 10] + [0] * 759)
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def test_round_trip_is_byte_identical(shapes_seg, tmp_path):
    """The synthetic set (manifest beside img_dir/) and a hand-made one: JPEG images, nested
    names, a palette (P-mode) label map, classes.txt; the commit message names the source."""
    import deeplake
    from cplugins_deeplake.convert import ConvertError, convert

    root = Path(shapes_seg["data_root"])
    convert(str(shapes_seg["deeplake"]), str(tmp_path / "back"), progress=False)
    assert _tree(tmp_path / "back") == _tree(root)
    assert len(_tree(root / "img_dir" / "train")) == 4
    ds = deeplake.open_read_only(str(shapes_seg["deeplake"] / "val"))
    message = ds.history[ds.version].message
    assert str(root / "img_dir" / "val") in message and str(root / "ann_dir" / "val") in message
    assert list(ds["masks"].metadata["class_names"]) == list(shapes_seg["classes"])

    rng = np.random.default_rng(0)
    src = tmp_path / "src"
    labels = rng.integers(0, 3, (12, 10), dtype=np.uint8)
    files = {"img_dir/train/a.jpg": _encoded(rng.integers(0, 255, (12, 10, 3), np.uint8),
                                             "jpeg", quality=81),
             "img_dir/train/sub/b.jpg": _encoded(rng.integers(0, 255, (12, 10, 3), np.uint8),
                                                 "jpeg"),
             "ann_dir/train/a.png": _encoded(labels, "png", palette=True),
             "ann_dir/train/sub/b.png": _encoded(labels[::-1].copy(), "png"),
             "classes.txt": b"sky\nroad\n\ncar\n"}
    for name, data in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
    convert(str(src), str(tmp_path / "dl"), progress=False)
    convert(str(tmp_path / "dl"), str(tmp_path / "again"), progress=False)
    assert _tree(tmp_path / "again") == files
    ds = deeplake.open_read_only(str(tmp_path / "dl" / "train"))
    assert list(ds["masks"].metadata["class_names"]) == ["sky", "road", "car"]

    (src / "ann_dir/train/c.png").write_bytes(files["ann_dir/train/a.png"])  # no image
    with pytest.raises(ConvertError, match="ann_dir/train/c.png has no pair"):
        convert(str(src), str(tmp_path / "out"), progress=False)
    (src / "ann_dir").rename(src / "labels")  # not an image-folder set with a split img_dir
    with pytest.raises(ConvertError, match="has img_dir/ but no ann_dir/"):
        convert(str(src), str(tmp_path / "out"), progress=False)
    assert not (tmp_path / "out").exists()


def _pipeline(load: str, annotations: str, test: bool = False) -> list[dict]:
    """mmseg's stock pipelines (SegFormer's), with the given two loading transforms."""
    if test:  # label maps loaded after the resize: compared at the original size
        return [dict(type=load), dict(type="Resize", scale=(96, 48), keep_ratio=True),
                dict(type=annotations), dict(type="PackSegInputs")]
    return [dict(type=load), dict(type=annotations),
            dict(type="Resize", scale=(96, 48), keep_ratio=True),
            dict(type="RandomFlip", prob=0.0), dict(type="PackSegInputs")]


@pytest.mark.parametrize("reduce_zero_label", [False, True])
def test_samples_equal_basesegdataset(shapes_seg, reduce_zero_label):
    import cplugins_deeplake  # noqa: F401
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS

    init_default_scope("mmseg")
    folder = DATASETS.build(dict(
        type="BaseSegDataset", **dict(shapes_seg["train"], reduce_zero_label=reduce_zero_label),
        pipeline=_pipeline("LoadImageFromFile", "LoadAnnotations")))
    lake = DATASETS.build(dict(
        type="DeepLakeSegDataset", path=str(shapes_seg["deeplake"] / "train"),
        reduce_zero_label=reduce_zero_label,
        pipeline=_pipeline("LoadImageFromDeepLake", "LoadAnnotationsFromDeepLake")))
    assert lake.metainfo["classes"] == folder.metainfo["classes"] == shapes_seg["classes"]
    assert lake.metainfo["palette"] == shapes_seg["palette"]
    assert len(lake) == len(folder) == 4
    for a, b in zip(folder, lake):
        sa, sb = a["data_samples"], b["data_samples"]
        assert sa.img_path.endswith("/" + sb.img_path) and sa.ori_shape == sb.ori_shape
        assert bool((a["inputs"] == b["inputs"]).all())
        assert np.array_equal(sa.gt_sem_seg.data.numpy(), sb.gt_sem_seg.data.numpy())
        assert len(np.unique(sb.gt_sem_seg.data.numpy())) > 1  # not a blank map


def _tiny_segformer() -> dict:
    from mmengine.config import Config

    cfg = Config.fromstring("_base_ = 'mmseg::_base_/models/segformer_mit-b0.py'", ".py")
    model = cfg.model.to_dict()
    model["data_preprocessor"]["size"] = (48, 48)
    model["backbone"].update(embed_dims=16, num_layers=[1, 1, 1, 1])  # stages 16..128 wide
    model["decode_head"].update(in_channels=[16, 32, 80, 128], channels=32, num_classes=4,
                                norm_cfg=dict(type="BN", requires_grad=True))
    return model


@pytest.mark.slow
def test_runner_trains_and_validates_with_iou_metric_as_on_the_folder(shapes_seg, tmp_path):
    """2 iterations + validation (IoUMetric) from Deep Lake (a dataloader worker reading it);
    the same weights tested on the mmseg folder give the same metrics."""
    import cplugins_deeplake  # noqa: F401
    from mmengine.config import Config
    from mmengine.runner import Runner

    def loader(dataset: dict, **kwargs) -> dict:
        return dict(dict(batch_size=2, num_workers=0, dataset=dataset,
                         sampler=dict(type="DefaultSampler", shuffle=False)), **kwargs)

    lake = dict(type="DeepLakeSegDataset")
    cfg = Config(dict(
        default_scope="mmseg", custom_imports=dict(imports=["cplugins_deeplake"]),
        work_dir=str(tmp_path / "work"), model=_tiny_segformer(),
        train_dataloader=loader(dict(lake, path=str(shapes_seg["deeplake"] / "train"),
                                     pipeline=_pipeline("LoadImageFromDeepLake",
                                                        "LoadAnnotationsFromDeepLake")),
                                num_workers=1),
        val_dataloader=loader(dict(lake, path=str(shapes_seg["deeplake"] / "val"),
                                   pipeline=_pipeline("LoadImageFromDeepLake",
                                                      "LoadAnnotationsFromDeepLake", True))),
        val_evaluator=dict(type="IoUMetric", iou_metrics=["mIoU"]),
        train_cfg=dict(type="IterBasedTrainLoop", max_iters=2, val_interval=2),
        val_cfg=dict(type="ValLoop"),
        test_dataloader=loader(dict(type="BaseSegDataset", **shapes_seg["val"],
                                    pipeline=_pipeline("LoadImageFromFile", "LoadAnnotations",
                                                       True))),
        test_evaluator=dict(type="IoUMetric", iou_metrics=["mIoU"]),
        test_cfg=dict(type="TestLoop"),
        optim_wrapper=dict(optimizer=dict(type="AdamW", lr=0.01)),
        default_hooks=dict(checkpoint=dict(type="CheckpointHook", interval=2, by_epoch=False),
                           logger=dict(type="LoggerHook", interval=1)),
        env_cfg=dict(dist_cfg=dict(backend="gloo")), randomness=dict(seed=0)))
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2
    assert math.isfinite(runner.message_hub.get_scalar("train/loss").current())
    assert (tmp_path / "work" / "iter_2.pth").is_file()
    keys = ("aAcc", "mIoU", "mAcc")
    lake_metrics = {k: runner.message_hub.get_scalar(f"val/{k}").current() for k in keys}
    folder_metrics = runner.test()
    assert {k: folder_metrics[k] for k in keys} == lake_metrics
    assert lake_metrics["aAcc"] > 0  # computed on real pixels, not an empty set


def test_bad_input_is_one_clear_error(shapes_seg):
    import cplugins_deeplake  # noqa: F401
    from cplugins_deeplake.source import DeepLakeError
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS

    init_default_scope("mmseg")
    path = str(shapes_seg["deeplake"] / "val")
    with pytest.raises(DeepLakeError, match="data_prefix is not used"):
        DATASETS.build(dict(type="DeepLakeSegDataset", path=path,
                            data_prefix=dict(img_path="img_dir/val")))
    with pytest.raises(DeepLakeError, match=r"metainfo classes \('a', 'b'\) differ from column "
                                            r"'masks'"):
        DATASETS.build(dict(type="DeepLakeSegDataset", path=path,
                            metainfo=dict(classes=("a", "b"))))
    folder = DATASETS.build(dict(type="BaseSegDataset", **shapes_seg["val"], pipeline=[
        dict(type="LoadAnnotationsFromDeepLake")]))
    with pytest.raises(DeepLakeError, match="use it with DeepLakeSegDataset"):
        folder[0]
