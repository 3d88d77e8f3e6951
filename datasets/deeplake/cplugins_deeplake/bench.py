"""The data-loading benchmark case: the full mmdet train pipeline from a Deep Lake copy vs the
COCO folder it was converted from (``cplugins bench DeepLake-loading``).

Declared without torch or deeplake; :func:`shapes_copies` writes the data when the case runs.
"""
from __future__ import annotations

from pathlib import Path


def _pipeline(load: str, size: tuple[int, int]) -> list[dict]:
    return [dict(type=load), dict(type="LoadAnnotations", with_bbox=True),
            dict(type="Resize", scale=(size[1], size[0]), keep_ratio=True),
            dict(type="RandomFlip", prob=0.5), dict(type="PackDetInputs")]


def _loader(dataset: dict) -> dict:
    return dict(batch_size=2, sampler=dict(type="DefaultSampler", shuffle=False),
                collate_fn=dict(type="pseudo_collate"), dataset=dataset)


def shapes_copies(root: Path, images: int = 32, size: tuple[int, int] = (256, 320)) -> dict:
    """Write ``images`` synthetic shapes images (PNG, ``size`` H W) as a COCO folder under
    ``root/coco`` and convert it to Deep Lake (``root/deeplake/train``); returns the paths the
    case's dataloader configs name (``coco_root``, ``coco_ann``, ``coco_img``,
    ``deeplake_path``) and the class names (``classes``)."""
    from cplugins.data.shapes import make_shapes_detection
    from cplugins_deeplake.convert import convert

    coco = make_shapes_detection(Path(root) / "coco", num_train=images, num_val=1,
                                 image_size=tuple(size), seed=0)
    convert(coco["data_root"], str(Path(root) / "deeplake"), "deeplake", progress=False)
    train = coco["train"]
    return {"coco_root": train["data_root"], "coco_ann": train["ann_file"],
            "coco_img": train["data_prefix"]["img"], "classes": train["metainfo"]["classes"],
            "deeplake_path": str(Path(root) / "deeplake" / "train")}


def loading_case(images: int = 32, size: tuple[int, int] = (256, 320)):
    """``DeepLake-loading``: samples/s of ``DeepLakeDetDataset`` + ``LoadImageFromDeepLake``
    vs ``CocoDataset`` + ``LoadImageFromFile`` on the same images and pipeline (LoadAnnotations,
    Resize, RandomFlip 0.5, PackDetInputs; batch 2, in order), 0 and 2 workers."""
    from cplugins.bench import BenchmarkCase

    return BenchmarkCase(
        "DeepLake-loading",
        _loader(dict(type="DeepLakeDetDataset", path="{deeplake_path}",
                     pipeline=_pipeline("LoadImageFromDeepLake", size))),
        dict(generator="cplugins_deeplake.bench:shapes_copies", images=images, size=size),
        baseline=_loader(dict(type="CocoDataset", data_root="{coco_root}",
                              ann_file="{coco_ann}", data_prefix=dict(img="{coco_img}"),
                              metainfo=dict(classes="{classes}"),
                              pipeline=_pipeline("LoadImageFromFile", size))),
        baseline_label="CocoDataset (COCO folder)", scope="mmdet", kind="dataloader",
        workers=(0, 2),
        description=f"full mmdet train pipeline, {images} shapes images {size[0]}x{size[1]} "
                    "PNG: Deep Lake copy vs COCO folder (samples/s)")
