"""DeepLakeDetDataset + LoadImageFromDeepLake: the same samples as the COCO folder through
CocoDataset, versions, query views, mmdet 2 integration keys."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def build():
    import cplugins_deeplake  # noqa: F401  (registers the modules)
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope

    def make(**cfg):
        init_default_scope("mmdet")
        return DATASETS.build(cfg)

    return make


def _samples(dataset) -> list:
    return [dataset[i] for i in range(len(dataset))]


@pytest.mark.parametrize("split", ["train", "val"])
def test_samples_equal_cocodataset(build, det_pipeline, shapes_coco, shapes_deeplake, split):
    coco = build(type="CocoDataset", **shapes_coco[split],
                 pipeline=det_pipeline("LoadImageFromFile"), test_mode=split == "val")
    lake = build(type="DeepLakeDetDataset", path=str(shapes_deeplake / split),
                 pipeline=det_pipeline("LoadImageFromDeepLake"), test_mode=split == "val")
    assert lake.metainfo["classes"] == tuple(shapes_coco["classes"])
    assert len(lake) == len(coco) == (4 if split == "train" else 2)
    for a, b in zip(_samples(coco), _samples(lake)):
        sa, sb = a["data_samples"], b["data_samples"]
        assert sa.img_id == sb.img_id and sa.ori_shape == sb.ori_shape
        assert sb.img_path.endswith(sa.img_path.rsplit("/", 1)[-1])
        assert a["inputs"].shape == b["inputs"].shape and bool((a["inputs"] == b["inputs"]).all())
        assert len(sa.gt_instances) > 0
        assert np.array_equal(sa.gt_instances.bboxes.numpy(), sb.gt_instances.bboxes.numpy())
        assert sa.gt_instances.labels.tolist() == sb.gt_instances.labels.tolist()
        assert sa.ignored_instances.bboxes.shape == sb.ignored_instances.bboxes.shape


def _append_copy_of_first_row(path, name: str) -> None:
    """Append row 0 again under another file name, commit and tag ``v2``; then one more row
    on a branch ``exp``."""
    import deeplake

    ds = deeplake.open(str(path))
    row = {c.name: ds[c.name][0] for c in ds.schema.columns}
    row["images"] = ds["images"].get_bytes(0)
    row["file_name"] = name
    row["image_id"] = 99
    ds.append({k: [v] for k, v in row.items()})
    ds.commit("appended a row")
    ds.tag("v2")
    branch = ds.branch("exp").open()  # one more row on a branch only
    branch.append({k: [v] for k, v in {**row, "file_name": "branch.png"}.items()})
    branch.commit("on exp")


def test_versions_query_and_mmdet2_keys(build, deeplake_copy):
    import deeplake

    first = deeplake.open_read_only(str(deeplake_copy)).version
    _append_copy_of_first_row(deeplake_copy, "extra.png")
    latest = build(type="DeepLakeDetDataset", path=str(deeplake_copy), pipeline=[])
    old = build(type="DeepLakeDetDataset", path=str(deeplake_copy), version=first, pipeline=[])
    tagged = build(type="DeepLakeDetDataset", path=f"file://{deeplake_copy}", version="v2",
                   pipeline=[])
    on_branch = build(type="DeepLakeDetDataset", path=str(deeplake_copy), version="exp",
                      pipeline=[])
    assert (len(old), len(latest), len(tagged), len(on_branch)) == (4, 5, 5, 6)
    assert on_branch[5]["img_path"] == "branch.png"
    assert latest[4]["img_id"] == 99 and latest[4]["img_path"] == "extra.png"
    assert latest[4]["instances"] == latest[0]["instances"]

    view = build(type="DeepLakeDetDataset", path=str(deeplake_copy),
                 query="SELECT * WHERE image_id == 99",
                 pipeline=[dict(type="LoadImageFromDeepLake")])
    assert len(view) == 1 and view[0]["img_path"] == "extra.png"
    assert np.array_equal(view[0]["img"],
                          build(type="DeepLakeDetDataset", path=str(deeplake_copy),
                                pipeline=[dict(type="LoadImageFromDeepLake")])[0]["img"])

    writable = deeplake.open(str(deeplake_copy))
    writable.query("SELECT * WHERE image_id == 99").tag("only_extra")  # a saved view
    saved = build(type="DeepLakeDetDataset", deeplake_path=str(deeplake_copy),
                  deeplake_view_id="only_extra", pipeline=[])
    assert len(saved) == 1 and saved[0]["img_path"] == "extra.png"

    ported = build(type="DeepLakeDetDataset", deeplake_path=str(deeplake_copy),
                   deeplake_commit_id=first,
                   deeplake_tensors=dict(img="images", gt_bboxes="boxes", gt_labels="labels"),
                   pipeline=[])
    assert len(ported) == 4 and ported[0]["instances"] == old[0]["instances"]


def test_rows_stay_those_read_when_the_branch_moves_on(build, deeplake_copy):
    """A commit after the dataset was built (here: row 0's image replaced) is not seen by the
    transform, which (re)opens the dataset in each process: images match their boxes."""
    import deeplake
    import mmcv

    before = deeplake.open_read_only(str(deeplake_copy))
    original = bytes(before["images"].get_bytes(0))
    dataset = build(type="DeepLakeDetDataset", path=str(deeplake_copy),
                    pipeline=[dict(type="LoadImageFromDeepLake")])
    ds = deeplake.open(str(deeplake_copy))
    other = bytes(ds["images"].get_bytes(1))
    ds["images"][0] = other
    ds.commit("replaced image 0")
    after = deeplake.open_read_only(str(deeplake_copy))
    assert bytes(after["images"].get_bytes(0)) == other != original
    assert np.array_equal(dataset[0]["img"], mmcv.imfrombytes(original))


def test_masks_equal_cocodataset(build, shapes_coco, shapes_deeplake):
    """LoadAnnotations(with_mask=True) gives the same instance masks (the converter keeps the
    COCO segmentation): what Mask R-CNN-style configs train on."""
    def pipeline(load: str) -> list[dict]:
        return [dict(type=load), dict(type="LoadAnnotations", with_bbox=True, with_mask=True),
                dict(type="PackDetInputs")]

    coco = build(type="CocoDataset", **shapes_coco["train"],
                 pipeline=pipeline("LoadImageFromFile"))
    lake = build(type="DeepLakeDetDataset", path=str(shapes_deeplake / "train"),
                 pipeline=pipeline("LoadImageFromDeepLake"))
    for a, b in zip(_samples(coco), _samples(lake)):
        ma, mb = a["data_samples"].gt_instances.masks, b["data_samples"].gt_instances.masks
        assert type(ma) is type(mb) and len(ma) == len(mb) > 0
        assert np.array_equal(ma.masks, mb.masks) and mb.masks.any()
