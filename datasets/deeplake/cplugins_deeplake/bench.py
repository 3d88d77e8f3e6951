"""The data of the ``DeepLake-loading`` benchmark case (declared in :mod:`.plugin`, without
torch or deeplake): :func:`shapes_copies` writes it when ``cplugins bench`` runs the case."""
from __future__ import annotations

from pathlib import Path


def shapes_copies(root: Path, images: int = 32, size: tuple[int, int] = (256, 320)) -> dict:
    """Write ``images`` synthetic shapes images (PNG, ``size`` H W) as a COCO folder under
    ``root/coco`` and convert it to Deep Lake (``root/deeplake/train``); returns the paths the
    case's dataloader configs name (``coco_root``, ``coco_ann``, ``coco_img``,
    ``deeplake_path``) and the class names (``classes``)."""
    from cplugins.shapes import make_shapes_detection
    from cplugins_deeplake.convert import convert

    coco = make_shapes_detection(Path(root) / "coco", num_train=images, num_val=1,
                                 image_size=tuple(size), seed=0)
    convert(coco["data_root"], str(Path(root) / "deeplake"), "deeplake", progress=False)
    train = coco["train"]
    return {"coco_root": train["data_root"], "coco_ann": train["ann_file"],
            "coco_img": train["data_prefix"]["img"], "classes": train["metainfo"]["classes"],
            "deeplake_path": str(Path(root) / "deeplake" / "train")}
