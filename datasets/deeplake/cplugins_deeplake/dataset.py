"""``DeepLakeDetDataset``: an mmdet 3.x detection dataset read from a Deep Lake 4 dataset.

Annotations (boxes ``(N, 4)``, labels ``(N,)``, image sizes) are read once, in the main
process, as column slices; images stay in Deep Lake and are decoded per sample by
``LoadImageFromDeepLake`` (which reopens the dataset in each worker process).
"""
from __future__ import annotations

import io
import json
import os
import warnings
from typing import Any

import numpy as np
from mmdet.datasets import BaseDetDataset

from .columns import resolve_tensors
from .source import DeepLakeError, Source, open_source, pin

#: Deep Lake's mmdet 2 integration keys -> this dataset's arguments
ALIASES = {"deeplake_path": "path", "deeplake_commit_id": "version",
           "deeplake_view_id": "view", "deeplake_tensors": "tensors",
           "deeplake_credentials": "creds"}
BOX_FORMATS = ("ltrb", "ltwh", "ccwh")
BOX_TYPES = ("pixel", "fractional")
_CHUNK = 256


def _take_aliases(kwargs: dict, given: dict, owner: str = "DeepLakeDetDataset") -> None:
    if "deeplake_dataloader" in kwargs:
        raise DeepLakeError(
            f"{owner}: deeplake_dataloader (Deep Lake's mmdet 2 key) sets the dataloader, not "
            f"the dataset; in mmengine: *_dataloader=dict(batch_size=..., num_workers=..., "
            f"sampler=dict(type='DefaultSampler', shuffle=...)), or train with "
            f"cplugins_deeplake.train_detector, which moves it there")
    for alias, name in ALIASES.items():
        if alias not in kwargs:
            continue
        value = kwargs.pop(alias)
        if given.get(name) is not None:
            raise DeepLakeError(f"{owner}: {alias} and {name} are the same setting; "
                                f"give one of them")
        given[name] = value
    creds = given.get("creds")
    if isinstance(creds, dict) and ({"username", "password"} & set(creds)):
        raise DeepLakeError(f"{owner}: deeplake_credentials username/password is a "
                            "Deep Lake 3 login; deeplake 4 takes token= (and creds= for "
                            "cloud storage)")
    if isinstance(creds, dict) and ("token" in creds or "creds" in creds):
        # mmdet 2 integration shape: dict(username, password, token, creds)
        given["token"] = given.get("token") or creds.get("token")
        given["creds"] = creds.get("creds")


def box_format(column, bbox_format: str | None, bbox_type: str | None,
               path: str) -> tuple[str, str]:
    """``(format, type)`` of a box column: its ``metadata['coords']`` (Deep Lake's
    ``{'mode': 'LTWH', 'type': 'pixel'}``), else ``bbox_format``/``bbox_type``."""
    coords = dict(column.metadata["coords"]) if "coords" in column.metadata.keys() else {}
    fmt = (bbox_format or coords.get("mode") or "").lower()
    kind = (bbox_type or coords.get("type") or "pixel").lower()
    if not fmt:
        raise DeepLakeError(
            f"{path!r}: column {column.name!r} does not record its box format (deeplake 4 "
            f"does not expose BoundingBox(format=...) to readers); pass bbox_format= one of "
            f"{', '.join(BOX_FORMATS)} (and bbox_type= pixel or fractional), or set "
            f"metadata['coords'] = {{'mode': 'LTWH', 'type': 'pixel'}} on the column")
    if fmt not in BOX_FORMATS or kind not in BOX_TYPES:
        raise DeepLakeError(f"{path!r}: column {column.name!r} box format {fmt!r}/{kind!r} is "
                            f"not supported; allowed: {', '.join(BOX_FORMATS)} / "
                            f"{', '.join(BOX_TYPES)}")
    return fmt, kind


def to_ltrb_pixel(boxes: np.ndarray, fmt: str, kind: str, width: int,
                  height: int) -> np.ndarray:
    """``(N, 4)`` boxes in ``fmt``/``kind`` -> ``(N, 4)`` float64 x1, y1, x2, y2 pixels."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if kind == "fractional":
        boxes = boxes * np.array([width, height, width, height], dtype=np.float64)
    a, b, c, d = boxes.T
    if fmt == "ltwh":
        return np.stack([a, b, a + c, b + d], axis=1)
    if fmt == "ccwh":
        return np.stack([a - c / 2, b - d / 2, a + c / 2, b + d / 2], axis=1)
    return boxes


def kept(box: np.ndarray, width: int, height: int) -> np.ndarray:
    """(N,) bool: the x1, y1, x2, y2 pixel boxes CocoDataset keeps (overlapping the image, at
    least 1 px wide and high)."""
    x1, y1, x2, y2 = np.asarray(box, dtype=np.float64).reshape(-1, 4).T
    inter_w = np.clip(np.minimum(x2, width) - np.maximum(x1, 0), 0, None)
    inter_h = np.clip(np.minimum(y2, height) - np.maximum(y1, 0), 0, None)
    return (inter_w * inter_h > 0) & (x2 - x1 >= 1) & (y2 - y1 >= 1)


def _fits(box: np.ndarray, width: int, height: int) -> np.ndarray:
    """(N,) bool: kept boxes lying inside the image (1 px of slack)."""
    x1, y1, x2, y2 = np.asarray(box, dtype=np.float64).reshape(-1, 4).T
    return (kept(box, width, height) & (x1 >= -1) & (y1 >= -1) & (x2 <= width + 1)
            & (y2 <= height + 1))


#: share of boxes that may be dropped or reach past their image before the dataset warns
MISFIT_WARN_SHARE = 0.1


def box_fit_warning(boxes: list, sizes: list[tuple[int, int]], fmt: str, kind: str,
                    where: str) -> str | None:
    """A warning when many boxes, read as ``fmt``/``kind``, are dropped or reach past their
    image: the sign of a column stored in another format (x1, y1, x2, y2 in an ltwh column
    trains silently to mAP 0); it names the format under which the boxes fit, if one does."""
    def misfits(box_format: str) -> int:
        return sum(int((~_fits(to_ltrb_pixel(b, box_format, kind, w, h), w, h)).sum())
                   for b, (w, h) in zip(boxes, sizes))

    total = sum(len(np.asarray(b).reshape(-1, 4)) for b in boxes)
    bad = misfits(fmt)
    if total == 0 or bad <= MISFIT_WARN_SHARE * total:
        return None
    others = {other: misfits(other) for other in BOX_FORMATS if other != fmt}
    best = min(others, key=others.get)
    hint = (f"read as {best!r}, {total - others[best]} would fit: if that is the column's "
            f"format, pass bbox_format={best!r}" if others[best] < bad else
            "no other box format fits them better: check the column's values and bbox_type")
    return (f"{where}: {bad} of {total} boxes read as {fmt!r} ({kind}) are dropped or reach "
            f"past their image; {hint}")


def _image_sizes(data, column: str) -> list[tuple[int, int]]:
    """``(width, height)`` of every image, from the encoded headers (no decoding)."""
    from PIL import Image

    sizes = []
    for start in range(0, len(data), _CHUNK):
        for encoded in data[column].get_bytes(slice(start, min(start + _CHUNK, len(data)))):
            with Image.open(io.BytesIO(bytes(encoded))) as image:
                sizes.append(image.size)
    return sizes


def _column(data, name: str) -> list:
    return [value for start in range(0, len(data), _CHUNK)
            for value in data[name][start:min(start + _CHUNK, len(data))]]


def _instance_extras(data, tensors: dict, names: set[str], path: str) -> list[list[dict]] | None:
    """Per row, per box: ``{'mask': COCO segmentation}`` (polygons or RLE, when there is one)
    and ``'drop': True`` where CocoDataset drops the annotation (``area <= 0``, ``ignore``).

    From the ``tensors['gt_masks']`` column (``Text``: a JSON list per row, one segmentation
    or null per box), else from the converter's ``coco_extra`` column; ``None`` without
    either."""
    if "gt_masks" in tensors:
        rows = [[{"mask": m} if m else {} for m in json.loads(str(text) or "[]")]
                for text in _column(data, tensors["gt_masks"])]
        column = tensors["gt_masks"]
    elif "coco_extra" in names:
        rows = [[{**({"mask": a["segmentation"]} if a.get("segmentation") else {}),
                  "drop": bool(a.get("ignore", False)) or a.get("area", 1) <= 0}
                 for a in json.loads(str(text))["annotations"]]
                for text in _column(data, "coco_extra")]
        column = "coco_extra"
    else:
        return None
    for row, extras in enumerate(rows):
        if not isinstance(extras, list):
            raise DeepLakeError(f"{path!r} row {row}: column {column!r} must hold a JSON list "
                                f"(one COCO segmentation or null per box)")
    return rows


def open_configured(owner: str, given: dict, query: str | None, kwargs: dict
                    ) -> tuple[Source, Any]:
    """The pinned :class:`Source` and the opened rows a dataset class's arguments name.

    ``given``: ``path``, ``version``, ``view``, ``tensors``, ``creds``, ``token`` (the
    ``deeplake_*`` aliases in ``kwargs`` are taken out into it); a relative ``path`` is joined
    to ``kwargs['data_root']`` as ``BaseDataset`` joins ``ann_file``.
    """
    _take_aliases(kwargs, given, owner)
    if given["view"] is not None and given["version"] is not None:
        raise DeepLakeError(f"{owner}: give version or view, not both (a saved "
                            "view is already a version of the data)")
    if not given["path"]:
        raise DeepLakeError(f"{owner}: path (or deeplake_path) is required: "
                            "the Deep Lake dataset to read")
    path = str(given["path"])
    if kwargs.get("data_root") and "://" not in path and not os.path.isabs(path):
        path = os.path.join(kwargs["data_root"], path)
    source = pin(Source(path=path, version=given["version"], query=query,
                        view=given["view"], creds=given["creds"], token=given["token"]))
    data = open_source(source)
    if len(data) == 0:
        where = source.path + (f"[{query!r}]" if query else "")
        raise DeepLakeError(f"{where!r}: no rows to read (an empty dataset, or a query "
                            f"that selects none)")
    return source, data


class DeepLakeRows:
    """Mixin of the dataset classes: ``self.source`` and its opened rows ``self._data``, which
    are not pickled (worker processes and ``lazy_init`` reopen them)."""

    source: Source
    _data: Any

    def rows(self):
        """The opened rows (reopened after unpickling)."""
        if self._data is None:
            self._data = open_source(self.source)
        return self._data

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_data"] = None
        return state


class DeepLakeDetDataset(DeepLakeRows, BaseDetDataset):
    """Detection dataset of a Deep Lake 4 dataset (local path or ``file://``; remote URLs get
    ``creds``/``token`` passed through).

    Args:
        path: the dataset (alias ``deeplake_path``).
        version: a tag, branch or commit id (alias ``deeplake_commit_id``).
        query: a TQL query selecting rows, e.g. ``"SELECT * WHERE file_name == 'a.png'"``.
        view: a saved view's tag (alias ``deeplake_view_id``).
        tensors: ``{img, gt_bboxes, gt_labels[, gt_ignore_flags, gt_masks]: column}``
            (alias ``deeplake_tensors``); inferred from the column kinds when omitted.
            ``gt_masks``: a ``Text`` column, a JSON list per row (one COCO segmentation,
            polygons or RLE, or null per box); without it, a converted COCO set's masks
            come from its ``coco_extra`` column (as ``instance['mask']``, what
            ``LoadAnnotations(with_mask=True)`` reads).
        creds, token: passed to ``deeplake.open_read_only`` (alias ``deeplake_credentials``).
        bbox_format, bbox_type: the box column's format when it does not record it.
        Other arguments: mmdet's ``BaseDetDataset`` (``pipeline``, ``test_mode``,
        ``filter_cfg`` as CocoDataset's, ``metainfo``...).
    """

    def __init__(self, path: str | None = None, version: str | None = None,
                 query: str | None = None, view: str | None = None,
                 tensors: dict | None = None, creds: dict | None = None,
                 token: str | None = None, bbox_format: str | None = None,
                 bbox_type: str | None = None, **kwargs: Any) -> None:
        given = dict(path=path, version=version, view=view, tensors=tensors, creds=creds,
                     token=token)
        if kwargs.pop("ann_file", None):
            raise DeepLakeError("DeepLakeDetDataset: ann_file is not used (annotations come "
                                "from the Deep Lake dataset); remove it")
        self.source, self._data = open_configured("DeepLakeDetDataset", given, query, kwargs)
        self.tensors = resolve_tensors(self._data, given["tensors"], self.source.path)
        self.box_format = box_format(self._data[self.tensors["gt_bboxes"]], bbox_format,
                                     bbox_type, self.source.path)
        metainfo = dict(kwargs.pop("metainfo", None) or {})
        metainfo["classes"] = self._class_names(metainfo.get("classes"))
        super().__init__(ann_file="", metainfo=metainfo, **kwargs)

    def _class_names(self, given) -> tuple[str, ...]:
        column = self._data[self.tensors["gt_labels"]]
        names = (tuple(column.metadata["class_names"])
                 if "class_names" in column.metadata.keys() else None)
        if names is None and not given:
            raise DeepLakeError(f"{self.source.path!r}: column {column.name!r} has no "
                                f"metadata['class_names']; pass metainfo=dict(classes=[...])")
        if names is not None and given and tuple(given) != names:
            raise DeepLakeError(f"{self.source.path!r}: metainfo classes {tuple(given)} differ "
                                f"from column {column.name!r}'s class_names {names}")
        return tuple(names if names is not None else given)

    def load_data_list(self) -> list[dict]:
        data, t, path = self.rows(), self.tensors, self.source.path
        names = {c.name for c in data.schema.columns}
        boxes, labels = _column(data, t["gt_bboxes"]), _column(data, t["gt_labels"])
        ignores = _column(data, t["gt_ignore_flags"]) if "gt_ignore_flags" in t else None
        extras = _instance_extras(data, t, names, path)
        files = _column(data, "file_name") if "file_name" in names else None
        ids = _column(data, "image_id") if "image_id" in names else None
        if {"width", "height"} <= names:
            sizes = list(zip(_column(data, "width"), _column(data, "height")))
        else:
            sizes = _image_sizes(data, t["img"])
        num_classes = len(self.metainfo["classes"])
        fmt, kind = self.box_format
        data_list = []
        for row in range(len(data)):
            width, height = (int(np.asarray(v).ravel()[0]) for v in sizes[row])
            row_labels = np.asarray(labels[row]).reshape(-1).astype(np.int64)
            row_boxes = to_ltrb_pixel(boxes[row], fmt, kind, width, height)
            if len(row_boxes) != len(row_labels):
                raise DeepLakeError(
                    f"{path!r} row {row}: {len(row_boxes)} boxes in column {t['gt_bboxes']!r} "
                    f"but {len(row_labels)} labels in column {t['gt_labels']!r}")
            bad = row_labels[(row_labels < 0) | (row_labels >= num_classes)]
            if len(bad):
                raise DeepLakeError(
                    f"{path!r} row {row}: class id {int(bad[0])} in column {t['gt_labels']!r} "
                    f"is outside the {num_classes} class names {self.metainfo['classes']}")
            flags = (np.zeros(len(row_labels), bool) if ignores is None
                     else np.asarray(ignores[row]).reshape(-1).astype(bool))
            row_extras = extras[row] if extras is not None else [{}] * len(row_labels)
            if len(row_extras) != len(row_labels):
                raise DeepLakeError(
                    f"{path!r} row {row}: {len(row_boxes)} boxes in column {t['gt_bboxes']!r} "
                    f"but {len(row_extras)} entries in column "
                    f"{t.get('gt_masks', 'coco_extra')!r}")
            instances = []
            for (x1, y1, x2, y2), keep, label, flag, extra in zip(
                    row_boxes.tolist(), kept(row_boxes, width, height), row_labels, flags,
                    row_extras):
                if not keep or extra.get("drop"):  # the instances CocoDataset keeps
                    continue
                instance = dict(bbox=[x1, y1, x2, y2], bbox_label=int(label),
                                ignore_flag=int(flag))
                if "mask" in extra:
                    instance["mask"] = extra["mask"]
                instances.append(instance)
            name = str(files[row]) if files is not None else f"{path}[{row}]"
            data_list.append(dict(
                img_path=name, img_id=int(np.asarray(ids[row]).ravel()[0]) if ids else row,
                height=height, width=width, instances=instances, seg_map_path=None,
                deeplake_source=self.source, deeplake_row=row,
                deeplake_column=t["img"]))
        warning = box_fit_warning(boxes, [(d["width"], d["height"]) for d in data_list], fmt,
                                  kind, f"{path!r} column {t['gt_bboxes']!r}")
        if warning:
            warnings.warn(warning, stacklevel=2)
        return data_list

    def filter_data(self) -> list[dict]:
        """CocoDataset's ``filter_cfg``: ``filter_empty_gt`` and ``min_size`` (train only)."""
        if self.test_mode or self.filter_cfg is None:
            return self.data_list
        empty = self.filter_cfg.get("filter_empty_gt", False)
        min_size = self.filter_cfg.get("min_size", 0)
        return [d for d in self.data_list
                if not (empty and not d["instances"]) and min(d["width"], d["height"]) >= min_size]
