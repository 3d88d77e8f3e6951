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


# --- templates' --data PATH (cplugins_data_sources): see plugin.DeepLakeSource -------------------
#: LoadImageFromFile arguments about reading files, which Deep Lake rows do not need
_FILE_READING_ARGS = ("backend_args", "file_client_args", "ignore_empty")


def resolve(task: str, root: str, reader):
    """The templates' ``DataInfo`` of ``root`` (``train/`` and ``val/`` Deep Lake datasets)."""
    import os.path as osp

    from cplugins.data.layouts import DataError, DataInfo

    not_datasets = [s for s in ("train", "val") if not is_deeplake(osp.join(root, s))]
    if not_datasets:
        raise DataError(f"--data {root!r}: {' and '.join(s + '/' for s in not_datasets)} "
                        f"is not a Deep Lake dataset (the other split is); a Deep Lake --data "
                        f"holds both train/ and val/, as `cplugins data convert` writes them")
    try:
        metas = {s: class_meta(osp.join(root, s), task) for s in ("train", "val")}
    except DeepLakeError as exc:
        raise DataError(f"--data {root!r}: {exc}") from None
    if metas["train"]["classes"] != metas["val"]["classes"]:
        raise DataError(f"--data {root!r}: train/ and val/ name different classes "
                        f"({metas['train']['classes']} and {metas['val']['classes']})")
    splits = {s: dict(deeplake=osp.join(root, s)) for s in ("train", "val")}
    return DataInfo(task, root, metas["train"]["classes"], splits,
                    palette=metas["train"].get("palette"), source=root,
                    imports=("cplugins_deeplake",), reader=reader)


def is_deeplake(path: str) -> bool:
    """A Deep Lake dataset folder (told by its log folder; deeplake is not imported)."""
    import os.path as osp

    return osp.isdir(osp.join(path, "_deeplake_log"))


def dataset(task: str, split: str, path: str, pipeline: list[dict], kwargs: dict) -> dict:
    """This plugin's dataset config of ``task`` reading ``path``, with ``pipeline``'s
    file-reading transforms replaced by its own (and, for detection validation, the
    ``instances`` CocoMetric needs without an annotation file)."""
    dataset_type, replacements = TASK_TYPES[task]
    cfg: dict = dict(type=dataset_type, path=path)
    if task == "detection":
        cfg.update(dict(filter_cfg=dict(filter_empty_gt=True, min_size=4))
                   if split == "train" else dict(test_mode=True))
    elif task == "segmentation":
        cfg["reduce_zero_label"] = False
    cfg.update(kwargs)
    cfg["pipeline"] = _replace_loading(pipeline, replacements,
                                       task == "detection" and split != "train")
    return cfg


def _replace_loading(node, replacements: dict[str, str], with_pack_instances: bool):
    """A copy of a pipeline (nested transforms included) with ``replacements`` applied."""
    if isinstance(node, list):
        return [_replace_loading(item, replacements, with_pack_instances) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _replace_loading(v, replacements, with_pack_instances) for k, v in node.items()}
    kind = out.get("type")
    if kind in replacements:
        out["type"] = replacements[kind]
        if kind == "LoadImageFromFile":
            for key in _FILE_READING_ARGS:
                out.pop(key, None)
    elif with_pack_instances:
        out = with_instances(out)
    return out
