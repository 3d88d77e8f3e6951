"""Image-folder classification sets: converted losslessly, and DeepLakeClsDataset gives the
samples mmpretrain's CustomDataset gives on the folder."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def shapes_folder(tmp_path_factory) -> dict:
    from cplugins.shapes import make_shapes_classification

    root = tmp_path_factory.mktemp("deeplake_cls")
    return make_shapes_classification(root / "folder", num_train=6, num_val=3, image_size=32,
                                      seed=2)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_folder_round_trip_and_samples_equal_customdataset(shapes_folder, tmp_path):
    import cplugins_deeplake  # noqa: F401
    from cplugins_deeplake.convert import convert
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import DATASETS

    root = Path(shapes_folder["data_root"])
    written = convert(str(root), str(tmp_path / "dl"), progress=False)
    assert sorted(written) == [str(tmp_path / "dl" / s) for s in ("train", "val")]
    assert convert(str(tmp_path / "dl"), str(tmp_path / "back"), progress=False)
    for split in ("train", "val"):
        assert _tree(tmp_path / "back" / split) == _tree(root / split)
        assert len(_tree(root / split)) == (6 if split == "train" else 3)

    init_default_scope("mmpretrain")
    pipeline = [dict(type="PackInputs")]
    stock = DATASETS.build(dict(type="CustomDataset", **shapes_folder["train"],
                                pipeline=[dict(type="LoadImageFromFile")] + pipeline))
    lake = DATASETS.build(dict(type="DeepLakeClsDataset", path=str(tmp_path / "dl/train"),
                               pipeline=[dict(type="LoadImageFromDeepLake")] + pipeline))
    assert lake.metainfo["classes"] == stock.metainfo["classes"] == shapes_folder["classes"]
    ours = sorted((lake[i] for i in range(len(lake))),
                  key=lambda s: s["data_samples"].img_path)
    theirs = sorted((stock[i] for i in range(len(stock))),
                    key=lambda s: s["data_samples"].img_path.split("/train/", 1)[1])
    assert len(ours) == len(theirs) == 6
    for a, b in zip(ours, theirs):
        assert b["data_samples"].img_path.endswith(a["data_samples"].img_path)
        assert a["data_samples"].gt_label.tolist() == b["data_samples"].gt_label.tolist()
        assert bool((a["inputs"] == b["inputs"]).all())
