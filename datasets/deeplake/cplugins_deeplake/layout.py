"""What a template needs of a Deep Lake dataset before it is built: its class names (and a
segmentation palette), for ``--data`` of ``cplugins render`` / ``tools/train.py --template``."""
from __future__ import annotations

from .columns import CLS_REQUIRED, REQUIRED, SEG_REQUIRED, resolve_tensors
from .source import DeepLakeError, Source, open_source

#: template task -> (the key of the column holding the class ids, the keys a row needs)
TASK_COLUMNS = {"detection": ("gt_labels", REQUIRED),
                "classification": ("gt_label", CLS_REQUIRED),
                "segmentation": ("gt_seg_map", SEG_REQUIRED)}
#: template task -> (dataset type, transforms replacing the file-reading ones)
TASK_TYPES = {"detection": ("DeepLakeDetDataset", {"LoadImageFromFile": "LoadImageFromDeepLake"}),
              "classification": ("DeepLakeClsDataset",
                                 {"LoadImageFromFile": "LoadImageFromDeepLake"}),
              "segmentation": ("DeepLakeSegDataset",
                               {"LoadImageFromFile": "LoadImageFromDeepLake",
                                "LoadAnnotations": "LoadAnnotationsFromDeepLake"})}
#: mmdet's PackDetInputs ``meta_keys`` default
PACK_DET_META_KEYS = ("img_id", "img_path", "ori_shape", "img_shape", "scale_factor", "flip",
                      "flip_direction")


def with_instances(transform: dict) -> dict:
    """``transform``, with ``instances`` added to its ``meta_keys`` when it is a
    ``PackDetInputs``: ``CocoMetric`` without ``ann_file`` reads the ground truth there."""
    if transform.get("type") != "PackDetInputs":
        return transform
    keys = tuple(transform.get("meta_keys", PACK_DET_META_KEYS))
    return dict(transform, meta_keys=keys if "instances" in keys else keys + ("instances",))


def class_meta(path: str, task: str) -> dict:
    """``{'classes': (...)[, 'palette': [[r, g, b], ...]]}`` of the dataset at ``path`` for a
    ``task`` template, from its label column's metadata; raises :class:`DeepLakeError` when
    the dataset lacks a column the task needs or does not name its classes."""
    key, required = TASK_COLUMNS[task]
    data = open_source(Source(path=path))
    column = data[resolve_tensors(data, None, path, required)[key]]
    keys = column.metadata.keys()
    if "class_names" not in keys:
        raise DeepLakeError(f"{path!r}: column {column.name!r} has no metadata['class_names'] "
                            f"(convert the set with `cplugins data convert`, or set it)")
    meta: dict = {"classes": tuple(column.metadata["class_names"])}
    if "palette" in keys:
        meta["palette"] = [list(colour) for colour in column.metadata["palette"]]
    return meta
