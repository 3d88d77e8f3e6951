"""Datasets for templates: ``--data PATH`` in a known layout, or the embedded synthetic set.

Layouts ``--data`` accepts (what each task's templates train on):

* detection, COCO format: ``PATH/annotations/instances_train*.json`` and
  ``instances_val*.json`` (any ``*train*.json`` / ``*val*.json`` when there is no
  ``instances_`` file), images in the folder named like the json's suffix (``train2017/``),
  ``train/`` / ``val/``, or ``images/``. Classes come from the json's categories.
* classification, image folders: ``PATH/train/<class>/*.jpg|png...`` and the same class folders
  under ``PATH/val/``. Classes are the sorted folder names.
* segmentation, mmseg layout: ``PATH/img_dir/{train,val}/*`` and ``PATH/ann_dir/{train,val}/*.png``
  (one label value per pixel, 255 = ignore). Classes come from ``PATH/classes.txt`` (one name
  per line), from a cplugins synthetic-data manifest, or else from the largest label value.

* any task, a layout a plugin reads (``cplugins_data_sources`` hook, :class:`DataSource`):
  ``cplugins-deeplake`` recognises ``PATH/train/`` and ``PATH/val/`` Deep Lake datasets (as
  ``cplugins data convert`` writes them) and renders its own dataset types and loading
  transforms in place of the file-reading ones.

Without ``--data`` a template trains on the task's synthetic shapes set
(:mod:`cplugins.shapes`): the rendered config names it in ``synthetic_data``, which
``tools/train.py`` generates (``python -m cplugins.shapes TASK --out DIR`` does it by hand).
"""
from __future__ import annotations

import json
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Any, Protocol

from cplugins.errors import TemplateError

#: the synthetic shapes sets: where they go (relative to the working directory) and how big
SYNTHETIC: dict[str, dict[str, Any]] = {
    "detection": dict(data_root="data/templates/shapes_detection/", num_train=128, num_val=32,
                      image_size=(256, 320), seed=0),
    "classification": dict(data_root="data/templates/shapes_classification/", num_train=96,
                           num_val=24, image_size=64, seed=0),
    "segmentation": dict(data_root="data/templates/shapes_segmentation/", num_train=64,
                         num_val=16, image_size=(128, 128), seed=0),
}
# same values as cplugins.shapes (which imports numpy; this module must not)
_SHAPES = ("circle", "square", "triangle")
_SEG_PALETTE = [[0, 0, 0], [220, 20, 60], [0, 160, 80], [30, 90, 230]]
_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


class DataError(TemplateError, ValueError):
    """``--data`` does not point at a dataset in the layout the task needs."""


@dataclass(frozen=True)
class DataInfo:
    """Where a task's data is and what it holds; builds dataset configs."""

    task: str
    root: str
    classes: tuple[str, ...]
    splits: dict[str, dict[str, Any]]
    palette: list[list[int]] | None = None
    synthetic: dict[str, Any] | None = None
    source: str = "synthetic"
    extra: dict[str, Any] = field(default_factory=dict)
    #: packages the rendered config imports to read the data (``custom_imports``)
    imports: tuple[str, ...] = ()
    #: the plugin's source that recognised ``root`` (None: a layout of this module)
    reader: DataSource | None = None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def metainfo(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"classes": tuple(self.classes)}
        if self.palette is not None:
            meta["palette"] = [list(p) for p in self.palette]
        return meta

    def dataset(self, split: str, pipeline: list[dict], **kwargs: Any) -> dict[str, Any]:
        """A dataset config of ``split`` (``train``/``val``) with ``pipeline``."""
        where = self.splits[split]
        if self.reader is not None:
            return self.reader.dataset(self.task, split, where, pipeline, dict(kwargs))
        if self.task == "detection":
            cfg = dict(type="CocoDataset", data_root=self.root, metainfo=self.metainfo,
                       ann_file=where["ann_file"], data_prefix=dict(img=where["img"]),
                       backend_args=None)
            cfg.update(dict(filter_cfg=dict(filter_empty_gt=True, min_size=4))
                       if split == "train" else dict(test_mode=True))
        elif self.task == "classification":
            cfg = dict(type="CustomDataset", data_root=self.root, data_prefix=where["prefix"],
                       with_label=True, metainfo=self.metainfo)
        else:
            cfg = dict(type="BaseSegDataset", data_root=self.root, metainfo=self.metainfo,
                       data_prefix=dict(img_path=where["img"], seg_map_path=where["seg"]),
                       img_suffix=self.extra["img_suffix"], seg_map_suffix=".png",
                       reduce_zero_label=False)
        cfg.update(kwargs)
        cfg["pipeline"] = pipeline
        return cfg

    def coco_ann_file(self, split: str) -> str | None:
        """The absolute-ish annotation file path CocoMetric reads (detection); ``None`` for data
        a plugin reads (CocoMetric then takes the ground truth from the data samples)."""
        if self.reader is not None:
            return None
        return self.root + self.splits[split]["ann_file"]


def resolve_data(task: str, data: str | os.PathLike | None) -> DataInfo:
    """The synthetic set of ``task`` (``data=None``) or the dataset at ``data``."""
    if data is None:
        return _synthetic(task)
    path = osp.abspath(osp.expanduser(os.fspath(data)))
    if not osp.isdir(path):
        raise DataError(f"--data {os.fspath(data)!r}: no such directory; give the folder of a "
                        f"{_LAYOUT_HINT[task]}")
    root = path.rstrip("/") + "/"
    for source in data_sources():
        if source.recognizes(root):
            return source.resolve(task, root)
    for marker, (what, plugin) in _PLUGIN_LAYOUTS.items():
        if any(osp.isdir(osp.join(root, split, marker)) for split in ("train", "val")):
            raise DataError(f"--data {root!r} holds {what}, which need the {plugin} plugin "
                            f"(not installed): {DATA_PLUGINS[plugin]}")
    resolver = {"detection": _coco, "classification": _image_folder,
                "segmentation": _segmentation}[task]
    return resolver(root)


_LAYOUT_HINT = {
    "detection": "COCO-format dataset (annotations/instances_train*.json, instances_val*.json "
                 "and the image folders)",
    "classification": "image-folder dataset (train/<class>/*.jpg and val/<class>/*.jpg)",
    "segmentation": "segmentation dataset (img_dir/{train,val}/ and ann_dir/{train,val}/*.png)",
}


def _synthetic(task: str) -> DataInfo:
    spec = dict(SYNTHETIC[task])
    root = spec["data_root"]
    synthetic = dict(task=task, **spec)
    if task == "detection":
        splits = {s: dict(ann_file=f"annotations/instances_{s}.json", img=f"{s}/")
                  for s in ("train", "val")}
        return DataInfo(task, root, _SHAPES, splits, synthetic=synthetic)
    if task == "classification":
        splits = {s: dict(prefix=s) for s in ("train", "val")}
        return DataInfo(task, root, _SHAPES, splits, synthetic=synthetic)
    splits = {s: dict(img=f"img_dir/{s}", seg=f"ann_dir/{s}") for s in ("train", "val")}
    return DataInfo(task, root, ("background",) + _SHAPES, splits, palette=_SEG_PALETTE,
                    synthetic=synthetic, extra=dict(img_suffix=".png"))


# --- detection: COCO ---------------------------------------------------------------------
def _pick_annotation(files: list[str], split: str) -> str | None:
    for pattern in (f"instances_{split}", split):
        found = sorted(f for f in files if pattern in f and f.endswith(".json"))
        if found:
            return found[0]
    return None


def _coco(root: str) -> DataInfo:
    ann_dir = osp.join(root, "annotations")
    files = sorted(os.listdir(ann_dir)) if osp.isdir(ann_dir) else []
    anns = {s: _pick_annotation(files, s) for s in ("train", "val")}
    missing = [s for s, f in anns.items() if f is None]
    if missing:
        raise DataError(f"--data {root!r}: no {' or '.join(missing)} annotation json in "
                        f"{ann_dir}/ (found: {', '.join(files) or 'nothing'}); detection "
                        f"templates take a {_LAYOUT_HINT['detection']}")
    splits = {}
    categories = None
    for split, name in anns.items():
        suffix = name[:-len(".json")].split("_", 1)[-1]
        candidates = [f"{suffix}/", f"images/{suffix}/", f"{split}/", f"images/{split}/",
                      "images/"]
        img = next((c for c in candidates if osp.isdir(osp.join(root, c))), None)
        if img is None:
            raise DataError(f"--data {root!r}: no image folder for annotations/{name}; looked "
                            f"for {', '.join(candidates)}")
        splits[split] = dict(ann_file=f"annotations/{name}", img=img)
        if split == "train":
            categories = _read_categories(osp.join(ann_dir, name))
    return DataInfo("detection", root, categories, splits, source=root)


def _read_categories(path: str) -> tuple[str, ...]:
    try:
        with open(path) as f:
            content = json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"--data: cannot read COCO annotations {path}: {exc}") from None
    categories = content.get("categories") if isinstance(content, dict) else None
    if not categories:
        raise DataError(f"--data: {path} has no 'categories'; a COCO annotation file lists "
                        "its classes there")
    return tuple(c["name"] for c in sorted(categories, key=lambda c: c["id"]))


# --- classification: image folders -------------------------------------------------------
def _class_folders(path: str) -> list[str]:
    return sorted(d for d in os.listdir(path) if osp.isdir(osp.join(path, d))
                  and not d.startswith("."))


def _image_folder(root: str) -> DataInfo:
    classes: dict[str, list[str]] = {}
    for split in ("train", "val"):
        folder = osp.join(root, split)
        if not osp.isdir(folder):
            raise DataError(f"--data {root!r}: no {split}/ folder; classification templates "
                            f"take an {_LAYOUT_HINT['classification']}")
        classes[split] = _class_folders(folder)
        if not classes[split]:
            raise DataError(f"--data {root!r}: {split}/ has no class folders")
    if classes["train"] != classes["val"]:
        only_train = sorted(set(classes["train"]) - set(classes["val"]))
        only_val = sorted(set(classes["val"]) - set(classes["train"]))
        raise DataError(f"--data {root!r}: train/ and val/ must have the same class folders "
                        f"(label indices follow the sorted folder names); only in train: "
                        f"{', '.join(only_train) or '-'}; only in val: "
                        f"{', '.join(only_val) or '-'}")
    splits = {s: dict(prefix=s) for s in ("train", "val")}
    return DataInfo("classification", root, tuple(classes["train"]), splits, source=root)


# --- segmentation: img_dir / ann_dir -----------------------------------------------------
def _segmentation(root: str) -> DataInfo:
    for sub in ("img_dir/train", "img_dir/val", "ann_dir/train", "ann_dir/val"):
        if not osp.isdir(osp.join(root, sub)):
            raise DataError(f"--data {root!r}: no {sub}/ folder; segmentation templates take a "
                            f"{_LAYOUT_HINT['segmentation']}")
    images = sorted(f for f in os.listdir(osp.join(root, "img_dir/train"))
                    if f.lower().endswith(_IMAGE_EXTENSIONS))
    if not images:
        raise DataError(f"--data {root!r}: img_dir/train/ holds no images "
                        f"({', '.join(_IMAGE_EXTENSIONS)})")
    img_suffix = osp.splitext(images[0])[1]
    classes, palette = _segmentation_classes(root)
    splits = {s: dict(img=f"img_dir/{s}", seg=f"ann_dir/{s}") for s in ("train", "val")}
    return DataInfo("segmentation", root, classes, splits, palette=palette, source=root,
                    extra=dict(img_suffix=img_suffix))


def declared_segmentation_classes(root: str
                                  ) -> tuple[tuple[str, ...] | None, list[list[int]] | None]:
    """``(classes, palette)`` an mmseg folder declares: ``classes.txt`` (one name a line;
    no palette) or a cplugins synthetic-data manifest; ``(None, None)`` when neither."""
    listing = osp.join(root, "classes.txt")
    if osp.isfile(listing):
        with open(listing) as f:
            return tuple(line.strip() for line in f if line.strip()), None
    manifest = osp.join(root, "cplugins_dataset.json")
    if osp.isfile(manifest):
        with open(manifest) as f:
            if json.load(f).get("params", {}).get("kind") == "segmentation":
                return ("background",) + _SHAPES, [list(p) for p in _SEG_PALETTE]
    return None, None


def _segmentation_classes(root: str) -> tuple[tuple[str, ...], list[list[int]] | None]:
    names, palette = declared_segmentation_classes(root)
    if names is not None:
        if len(names) < 2:
            raise DataError(f"--data: {osp.join(root, 'classes.txt')} must name at least 2 "
                            f"classes (one a line)")
        return names, palette
    import numpy as np
    from PIL import Image

    top = 0
    folder = osp.join(root, "ann_dir/train")
    for name in sorted(os.listdir(folder)):
        if name.endswith(".png"):
            values = np.unique(np.asarray(Image.open(osp.join(folder, name))))
            values = values[values != 255]
            if values.size:
                top = max(top, int(values.max()))
    if top < 1:
        raise DataError(f"--data {root!r}: the masks in ann_dir/train/ hold no label above 0; "
                        "write classes.txt (one class name a line, background first)")
    return tuple(f"class_{i}" for i in range(top + 1)), None


# --- any task: layouts plugins read (cplugins_data_sources) ---------------------------------
#: data plugins cplugins knows of -> how to install each (hints for errors only)
DATA_PLUGINS = {
    "cplugins-deeplake": "pip install cplugins-deeplake (datasets/deeplake in this repository)",
}
#: marker folder under train/ or val/ -> (what it is, the plugin that reads it); hints only:
#: the plugin itself recognises the layout through ``cplugins_data_sources``
_PLUGIN_LAYOUTS = {"_deeplake_log": ("Deep Lake datasets", "cplugins-deeplake")}


class DataSource(Protocol):
    """A dataset layout a plugin reads (returned by its ``cplugins_data_sources`` hook).

    Light like the hook module that returns it: import the reader in the methods."""

    name: str

    def recognizes(self, root: str) -> bool:
        """Whether ``root`` (a folder, ending in ``/``) is in this layout (cheap: no reading)."""

    def resolve(self, task: str, root: str) -> DataInfo:
        """The :class:`DataInfo` of ``root`` for ``task`` (classes, splits, ``reader=self``);
        :class:`DataError` when ``root`` is broken."""

    def dataset(self, task: str, split: str, where: dict[str, Any], pipeline: list[dict],
                kwargs: dict[str, Any]) -> dict[str, Any]:
        """The dataset config of ``split`` (``where``: ``DataInfo.splits[split]``), its
        ``pipeline`` adapted to the layout."""


def data_sources() -> list[DataSource]:
    """The layouts installed plugins read (``cplugins_data_sources`` hook)."""
    from cplugins.manager import get_manager

    manager = get_manager()
    manager.discover()
    return [source for found in manager.pm.hook.cplugins_data_sources() for source in found or []]
