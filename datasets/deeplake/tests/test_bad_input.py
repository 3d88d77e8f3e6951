"""Bad input to DeepLakeDetDataset: one clear error naming the dataset, column or key."""
from __future__ import annotations

import io
import os

import numpy as np
import pytest


def _png(h: int = 8, w: int = 10) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(buf, "png")
    return buf.getvalue()


def _write(path, boxes, labels, extra_image: bool = False, coords: bool = True,
           masks: str | None = None) -> str:
    """A one-row Deep Lake detection dataset with three class names (and ``masks``: the
    JSON text of a ``segmentations`` column)."""
    import deeplake
    from deeplake import types

    ds = deeplake.create(f"file://{path}")
    ds.add_column("images", types.Image(dtype="uint8", sample_compression="png"))
    if extra_image:
        ds.add_column("thumbnails", types.Image(dtype="uint8", sample_compression="png"))
    ds.add_column("boxes", types.BoundingBox(format="ltrb", bbox_type="pixel"))
    ds.add_column("labels", types.ClassLabel(types.Array("uint32", 1)))
    ds["labels"].metadata["class_names"] = ["a", "b", "c"]
    if coords:
        ds["boxes"].metadata["coords"] = {"mode": "LTRB", "type": "pixel"}
    row = {"images": [_png()], "boxes": [np.array(boxes, np.float32).reshape(-1, 4)],
           "labels": [np.array(labels, np.uint32)]}
    if extra_image:
        row["thumbnails"] = [_png()]
    if masks is not None:
        ds.add_column("segmentations", types.Text())
        row["segmentations"] = [masks]
    ds.append(row)
    ds.commit("test data")
    return str(path)


@pytest.fixture(scope="module")
def build_error():
    import cplugins_deeplake  # noqa: F401
    from cplugins_deeplake.source import DeepLakeError
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope

    def error(**cfg) -> str:
        init_default_scope("mmdet")
        with pytest.raises(DeepLakeError) as info:
            DATASETS.build(dict(type="DeepLakeDetDataset", pipeline=[], **cfg))
        return str(info.value)

    return error


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> str:
    return _write(tmp_path_factory.mktemp("good") / "ds", [[1, 1, 5, 5]], [2])


def test_good_dataset_builds(good):  # the baseline the errors below differ from
    import cplugins_deeplake  # noqa: F401
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope

    init_default_scope("mmdet")
    dataset = DATASETS.build(dict(type="DeepLakeDetDataset", path=good, pipeline=[]))
    assert dataset[0]["instances"] == [dict(bbox=[1.0, 1.0, 5.0, 5.0], bbox_label=2,
                                            ignore_flag=0)]
    assert (dataset[0]["width"], dataset[0]["height"]) == (10, 8)
    relative = DATASETS.build(dict(type="DeepLakeDetDataset", data_root=os.path.dirname(good),
                                   path="ds", pipeline=[]))  # joined like ann_file
    assert relative[0]["instances"] == dataset[0]["instances"]


def test_not_a_dataset(build_error, tmp_path):
    message = build_error(path=str(tmp_path))
    assert f"{str(tmp_path)!r} is not a Deep Lake dataset" in message


def test_missing_column_lists_the_columns(build_error, good):
    message = build_error(path=good, tensors=dict(img="imgs", gt_bboxes="boxes",
                                                  gt_labels="labels"))
    assert "img='imgs'" in message
    assert "images (Image), boxes (BoundingBox), labels (ClassLabel)" in message


def test_ambiguous_columns_list_the_candidates(build_error, tmp_path):
    path = _write(tmp_path / "ds", [[1, 1, 5, 5]], [0], extra_image=True)
    message = build_error(path=path)
    assert "cannot tell which column holds img: 2 columns (images, thumbnails)" in message
    assert "tensors=dict(img='COLUMN'" in message


def test_count_mismatch(build_error, tmp_path):
    message = build_error(path=_write(tmp_path / "ds", [[1, 1, 5, 5], [2, 2, 6, 6]], [0]))
    assert "row 0: 2 boxes in column 'boxes' but 1 labels in column 'labels'" in message


def test_class_id_out_of_range(build_error, tmp_path):
    message = build_error(path=_write(tmp_path / "ds", [[1, 1, 5, 5]], [3]))
    assert "row 0: class id 3 in column 'labels' is outside the 3 class names" in message


def test_unknown_version_names_what_exists(build_error, good):
    message = build_error(path=good, version="v9")
    assert "unknown version 'v9'" in message and "a branch (main)" in message


def test_tql_syntax_error(build_error, good):
    message = build_error(path=good, query="SELEC * WHERE")
    assert "the query 'SELEC * WHERE' failed" in message and "syntax error" in message


def test_query_selecting_nothing(build_error, good):
    message = build_error(path=good, query="SELECT * WHERE labels == 7")
    assert "no rows to read" in message and good in message


def test_box_format_unknown(build_error, tmp_path):
    message = build_error(path=_write(tmp_path / "ds", [[1, 1, 5, 5]], [0], coords=False))
    assert "column 'boxes' does not record its box format" in message
    assert "bbox_format=" in message


def test_alias_and_key_together(build_error, good):
    message = build_error(path=good, deeplake_path=good)
    assert "deeplake_path and path are the same setting" in message


def test_fractional_and_centre_boxes_become_pixel_corners(tmp_path):
    """A 10x8 image: fractional ccwh (0.5, 0.5, 0.4, 0.5) is (3, 2, 7, 6) in pixels."""
    import cplugins_deeplake  # noqa: F401
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope

    path = _write(tmp_path / "ds", [[0.5, 0.5, 0.4, 0.5]], [1], coords=False)
    init_default_scope("mmdet")
    dataset = DATASETS.build(dict(type="DeepLakeDetDataset", path=path, pipeline=[],
                                  bbox_format="ccwh", bbox_type="fractional"))
    assert dataset[0]["instances"][0]["bbox"] == pytest.approx([3.0, 2.0, 7.0, 6.0])


def test_mmdet2_login_and_version_with_view(build_error, good):
    message = build_error(deeplake_path=good,
                          deeplake_credentials=dict(username="u", password="p"))
    assert "username/password is a Deep Lake 3 login" in message
    assert "give version or view, not both" in build_error(path=good, version="main",
                                                          view="v1")


def test_deeplake_dataloader_in_a_dataset_says_where_it_belongs(build_error, good):
    message = build_error(path=good, deeplake_dataloader=dict(batch_size=2))
    assert "deeplake_dataloader (Deep Lake's mmdet 2 key) sets the dataloader" in message
    assert "cplugins_deeplake.train_detector" in message


def test_masks_from_a_text_column(build_error, tmp_path):
    import cplugins_deeplake  # noqa: F401
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope

    polygon = [[1, 1, 5, 1, 5, 5]]
    path = _write(tmp_path / "ds", [[1, 1, 5, 5], [2, 2, 6, 6]], [0, 1],
                  masks=f"[{polygon}, null]")
    init_default_scope("mmdet")
    dataset = DATASETS.build(dict(type="DeepLakeDetDataset", path=path, pipeline=[],
                                  tensors=dict(img="images", gt_bboxes="boxes",
                                               gt_labels="labels", gt_masks="segmentations")))
    assert [i.get("mask") for i in dataset.get_data_info(0)["instances"]] == [polygon, None]
    assert "is of kind BoundingBox; allowed: Text" in build_error(path=path, tensors=dict(
        img="images", gt_bboxes="boxes", gt_labels="labels", gt_masks="boxes"))
    one_mask = _write(tmp_path / "one", [[1, 1, 5, 5], [2, 2, 6, 6]], [0, 1],
                      masks=f"[{polygon}]")
    assert "row 0: 2 boxes in column 'boxes' but 1 entries in column 'segmentations'" in \
        build_error(path=one_mask, tensors=dict(img="images", gt_bboxes="boxes",
                                                gt_labels="labels", gt_masks="segmentations"))


@pytest.mark.parametrize("stored, declared, boxes", [
    ("ltrb", "ltwh", [[5, 4, 9, 7], [1, 1, 4, 3]]),   # x1, y1, x2, y2 read as x, y, w, h
    ("ltwh", "ltrb", [[5, 4, 3, 2], [1, 1, 4, 3]]),   # x, y, w, h read as x1, y1, x2, y2
])
def test_boxes_in_another_format_than_the_column_says_warn_and_name_it(tmp_path, stored,
                                                                        declared, boxes):
    """Boxes stored in one format in a column declared as another trained silently to mAP 0
    (dropped as empty, or reaching past the image); the dataset now warns and names the
    format under which they fit. The same boxes read as what they are: no warning."""
    import warnings

    import cplugins_deeplake  # noqa: F401
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope

    path = _write(tmp_path / "ds", boxes, [0, 1], coords=False)  # a 10x8 image
    init_default_scope("mmdet")
    with pytest.warns(UserWarning) as record:
        DATASETS.build(dict(type="DeepLakeDetDataset", path=path, pipeline=[],
                            bbox_format=declared))
    (message,) = [str(w.message) for w in record if "boxes read as" in str(w.message)]
    assert message == (f"{path!r} column 'boxes': 1 of 2 boxes read as {declared!r} (pixel) "
                       f"are dropped or reach past their image; read as {stored!r}, 2 would "
                       f"fit: if that is the column's format, pass bbox_format={stored!r}")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        dataset = DATASETS.build(dict(type="DeepLakeDetDataset", path=path, pipeline=[],
                                      bbox_format=stored))
    assert not [w for w in record if "boxes read as" in str(w.message)]
    assert len(dataset[0]["instances"]) == 2
