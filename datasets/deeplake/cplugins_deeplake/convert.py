"""COCO folders, image-folder sets and mmseg sets <-> Deep Lake datasets, lossless
(``cplugins data convert SRC DST``).

One Deep Lake dataset per split at ``DST/<split>`` (``annotations/instances_<split>.json``).
Each image row stores the original encoded bytes (no re-encoding), its file name, COCO image
id and size, its boxes (``ltwh`` pixels, float64: JSON numbers come back equal), class labels
(``ClassLabel`` with the category names) and every other COCO field as JSON; the dataset's
metadata keeps ``info``, ``licenses``, ``categories`` and the folder layout, so the way back
writes the same annotation file and image files. Each split is one commit whose message
records the source.
"""
from __future__ import annotations

import base64
import json
import os
import os.path as osp
from collections import defaultdict
from collections.abc import Iterable

from tqdm import tqdm

from .source import DeepLakeError, import_deeplake

_BATCH = 64
#: the annotation keys stored in their own columns; every other key goes to ``coco_extra``
_ANN_COLUMNS = ("id", "image_id", "category_id", "bbox")
_IMAGE_COLUMNS = ("id", "file_name", "width", "height")
_COMPRESSION = {".png": "png", ".jpg": "jpg", ".jpeg": "jpg"}


class ConvertError(DeepLakeError):
    """The source cannot be converted; nothing was written."""


def refuse_existing(paths: Iterable[str]) -> None:
    """Raise :class:`ConvertError` naming the first of ``paths`` that exists (nothing is
    written over)."""
    for path in paths:
        if osp.exists(path):
            raise ConvertError(f"{path} exists already; choose an empty DST (nothing written)")


# --- detection of the source ---------------------------------------------------------------
def is_deeplake(path: str) -> bool:
    return osp.isdir(osp.join(path, "_deeplake_log"))


def coco_splits(root: str) -> dict[str, tuple[str, str]]:
    """``{split: (annotation json, image folder)}`` of a COCO folder."""
    ann_dir = osp.join(root, "annotations")
    files = sorted(f for f in os.listdir(ann_dir) if f.endswith(".json")) \
        if osp.isdir(ann_dir) else []
    if not files:
        raise ConvertError(f"{root!r} is neither a COCO folder (no annotations/*.json), an "
                           f"image-folder set (<split>/<class>/*), an mmseg set (img_dir/ and "
                           f"ann_dir/) nor a Deep Lake dataset or a folder of them")
    splits = {}
    for name in files:
        split = name[:-len(".json")].removeprefix("instances_")
        candidates = [f"{split}", f"images/{split}", "images"]
        image_dir = next((c for c in candidates if osp.isdir(osp.join(root, c))), None)
        if image_dir is None:
            raise ConvertError(f"{root!r}: no image folder for annotations/{name}; looked for "
                               f"{', '.join(c + '/' for c in candidates)}")
        splits[split] = (name, image_dir)
    return splits


def deeplake_splits(root: str) -> dict[str, str]:
    """``{split: dataset path}``: ``root`` itself or its sub-folders that are datasets."""
    if is_deeplake(root):
        return {osp.basename(osp.normpath(root)): root}
    found = {d: osp.join(root, d) for d in sorted(os.listdir(root))
             if is_deeplake(osp.join(root, d))} if osp.isdir(root) else {}
    return found


# --- COCO -> Deep Lake -----------------------------------------------------------------------
def _read_json(path: str) -> dict:
    try:
        with open(path) as f:
            content = json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise ConvertError(f"cannot read COCO annotations {path}: {exc}") from None
    if not isinstance(content, dict) or not content.get("images"):
        raise ConvertError(f"{path}: no 'images' in this COCO annotation file")
    return content


def _check_coco(coco: dict, ann_path: str, image_root: str) -> str:
    """The images' common compression; raises on what cannot be stored losslessly."""
    category_ids = {c["id"] for c in coco.get("categories", [])}
    image_ids = {im["id"] for im in coco["images"]}
    for ann in coco.get("annotations", []):
        if ann["image_id"] not in image_ids:
            raise ConvertError(f"{ann_path}: annotation {ann['id']} has unknown image_id "
                               f"{ann['image_id']}")
        if ann["category_id"] not in category_ids:
            raise ConvertError(f"{ann_path}: annotation {ann['id']} has category_id "
                               f"{ann['category_id']}, not one of the categories "
                               f"{sorted(category_ids)}")
    kinds = {_COMPRESSION.get(osp.splitext(im["file_name"])[1].lower()) for im in coco["images"]}
    if None in kinds or len(kinds) != 1:
        raise ConvertError(f"{ann_path}: images must all be PNG or all JPEG to be stored "
                           f"unchanged; found extensions "
                           f"{sorted({osp.splitext(im['file_name'])[1] for im in coco['images']})}")
    missing = [im["file_name"] for im in coco["images"]
               if not osp.isfile(osp.join(image_root, im["file_name"]))]
    if missing:
        raise ConvertError(f"{ann_path}: {len(missing)} image file(s) missing under "
                           f"{image_root}/, e.g. {missing[0]}")
    return kinds.pop()


def _create(path: str, compression: str, class_names: list[str]):
    deeplake = import_deeplake()
    types = deeplake.types
    ds = deeplake.create("file://" + osp.abspath(path))
    ds.add_column("images", types.Image(dtype="uint8", sample_compression=compression))
    ds.add_column("boxes", types.BoundingBox("float64", format="ltwh", bbox_type="pixel"))
    ds.add_column("labels", types.ClassLabel(types.Array("uint32", 1)))
    ds.add_column("iscrowd", types.Array("uint8", 1))
    ds.add_column("file_name", types.Text())
    ds.add_column("image_id", types.Int64())
    ds.add_column("width", types.Int64())
    ds.add_column("height", types.Int64())
    ds.add_column("ann_ids", types.Array("int64", 1))
    ds.add_column("ann_order", types.Array("int64", 1))
    ds.add_column("coco_extra", types.Text())
    ds["labels"].metadata["class_names"] = list(class_names)
    # readers learn the box format from here (deeplake 4 does not expose the type's format)
    ds["boxes"].metadata["coords"] = {"mode": "LTWH", "type": "pixel"}
    return ds


def coco_to_deeplake(src: str, dst: str, progress: bool = True) -> list[str]:
    """Convert every split of the COCO folder ``src`` to ``dst/<split>``; returns the paths."""
    import numpy as np

    splits = coco_splits(src)
    targets = {split: osp.join(dst, split) for split in splits}
    refuse_existing(targets.values())
    loaded = {}
    for split, (name, image_dir) in splits.items():  # check everything before writing
        coco = _read_json(osp.join(src, "annotations", name))
        loaded[split] = (coco, _check_coco(coco, name, osp.join(src, image_dir)))
    written = []
    for split, (name, image_dir) in splits.items():
        coco, compression = loaded[split]
        categories = coco.get("categories", [])
        label_of = {c["id"]: i for i, c in enumerate(categories)}
        anns = defaultdict(list)
        for order, ann in enumerate(coco.get("annotations", [])):
            anns[ann["image_id"]].append((order, ann))
        ds = _create(targets[split], compression, [c["name"] for c in categories])
        ds.metadata["coco"] = {
            "annotation_file": name, "image_dir": image_dir,
            **{k: v for k, v in coco.items() if k not in ("images", "annotations")}}
        images = coco["images"]
        bar = tqdm(total=len(images), desc=f"{split} -> deeplake", unit="img",
                   disable=not progress)
        for start in range(0, len(images), _BATCH):
            batch = images[start:start + _BATCH]
            rows = defaultdict(list)
            for image in batch:
                with open(osp.join(src, image_dir, image["file_name"]), "rb") as f:
                    rows["images"].append(f.read())
                own = anns[image["id"]]
                rows["boxes"].append(np.array([a["bbox"] for _, a in own],
                                              np.float64).reshape(-1, 4))
                rows["labels"].append(np.array([label_of[a["category_id"]] for _, a in own],
                                               np.uint32))
                rows["iscrowd"].append(np.array([int(bool(a.get("iscrowd", 0)))
                                                 for _, a in own], np.uint8))
                rows["file_name"].append(image["file_name"])
                rows["image_id"].append(image["id"])
                rows["width"].append(image["width"])
                rows["height"].append(image["height"])
                rows["ann_ids"].append(np.array([a["id"] for _, a in own], np.int64))
                rows["ann_order"].append(np.array([o for o, _ in own], np.int64))
                rows["coco_extra"].append(json.dumps({
                    "image": {k: v for k, v in image.items() if k not in _IMAGE_COLUMNS},
                    "annotations": [{k: v for k, v in a.items() if k not in _ANN_COLUMNS}
                                    for _, a in own]}))
            ds.append(dict(rows))
            bar.update(len(batch))
        bar.close()
        ds.commit(f"cplugins data convert: COCO {osp.abspath(osp.join(src, 'annotations', name))}"
                  f" with images {osp.abspath(osp.join(src, image_dir))}/ ({len(images)} images, "
                  f"{len(coco.get('annotations', []))} annotations)")
        written.append(targets[split])
    return written


# --- Deep Lake -> COCO -----------------------------------------------------------------------
def _column(ds, name: str) -> list:
    return [v for s in range(0, len(ds), _BATCH) for v in ds[name][s:min(s + _BATCH, len(ds))]]


def deeplake_to_coco(src: str, dst: str, progress: bool = True) -> list[str]:
    """Write every Deep Lake dataset of ``src`` (one per split) back as a COCO folder."""
    deeplake = import_deeplake()
    datasets = deeplake_splits(src)
    if not datasets:
        raise ConvertError(f"{src!r} is not a Deep Lake dataset nor a folder of them")
    opened = {}
    for split, path in datasets.items():
        ds = deeplake.open_read_only("file://" + osp.abspath(path))
        if "coco" not in ds.metadata.keys():
            raise ConvertError(f"{path!r}: no metadata['coco'] (not written by `cplugins data "
                               f"convert`); only such datasets convert back to COCO for now")
        opened[split] = (ds, dict(ds.metadata["coco"]))
    for _, meta in opened.values():
        target = osp.join(dst, "annotations", meta["annotation_file"])
        refuse_existing([target])
    written = []
    for split, (ds, meta) in opened.items():
        categories = meta.get("categories", [])
        image_dir = osp.join(dst, meta["image_dir"])
        os.makedirs(image_dir, exist_ok=True)
        columns = {c: _column(ds, c) for c in ("boxes", "labels", "file_name", "image_id",
                                               "width", "height", "ann_ids", "ann_order",
                                               "coco_extra")}
        images, annotations = [], []
        for row in tqdm(range(len(ds)), desc=f"{split} -> coco", unit="img",
                        disable=not progress):
            extra = json.loads(columns["coco_extra"][row])
            name = str(columns["file_name"][row])
            path = osp.join(image_dir, name)
            os.makedirs(osp.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(bytes(ds["images"].get_bytes(row)))
            image_id = int(columns["image_id"][row])
            images.append({"id": image_id, "file_name": name,
                           "width": int(columns["width"][row]),
                           "height": int(columns["height"][row]), **extra["image"]})
            for box, label, ann_id, order, rest in zip(
                    columns["boxes"][row].reshape(-1, 4).tolist(), columns["labels"][row],
                    columns["ann_ids"][row], columns["ann_order"][row], extra["annotations"]):
                annotations.append((int(order), {
                    "id": int(ann_id), "image_id": image_id,
                    "category_id": categories[int(label)]["id"], "bbox": box, **rest}))
        coco = {k: v for k, v in meta.items() if k not in ("annotation_file", "image_dir")}
        coco["images"] = images
        coco["annotations"] = [a for _, a in sorted(annotations, key=lambda x: x[0])]
        target = osp.join(dst, "annotations", meta["annotation_file"])
        os.makedirs(osp.dirname(target), exist_ok=True)
        with open(target, "w") as f:
            json.dump(coco, f)
        written.append(target)
    return written


# --- image folders (classification) <-> Deep Lake -------------------------------------------
def folder_splits(root: str) -> dict[str, str]:
    """``{split: folder}`` of an image-folder classification set (``<split>/<class>/*``)."""
    if not osp.isdir(root) or osp.isdir(osp.join(root, "annotations")):
        return {}
    found = {}
    for split in sorted(os.listdir(root)):
        folder = osp.join(root, split)
        children = sorted(os.listdir(folder)) if osp.isdir(folder) else []
        if children and all(osp.isdir(osp.join(folder, c)) for c in children) and any(
                os.listdir(osp.join(folder, c)) for c in children):
            found[split] = folder
    return found


def folder_to_deeplake(src: str, dst: str, progress: bool = True) -> list[str]:
    """Each ``src/<split>/<class>/<file>`` set becomes ``dst/<split>``: the image bytes, a
    ``ClassLabel`` (class names: the sorted class folders) and ``file_name`` ``<class>/<file>``."""
    deeplake = import_deeplake()
    types = deeplake.types
    splits = folder_splits(src)
    refuse_existing(osp.join(dst, s) for s in splits)
    plans = {}
    for split, folder in splits.items():
        classes = sorted(os.listdir(folder))
        files = [(label, f"{name}/{f}") for label, name in enumerate(classes)
                 for f in sorted(os.listdir(osp.join(folder, name)))]
        kinds = {_COMPRESSION.get(osp.splitext(f)[1].lower()) for _, f in files}
        if None in kinds or len(kinds) != 1:
            raise ConvertError(f"{folder}: images must all be PNG or all JPEG to be stored "
                               f"unchanged; found {sorted({osp.splitext(f)[1] for _, f in files})}")
        plans[split] = (classes, files, kinds.pop())
    written = []
    for split, (classes, files, compression) in plans.items():
        ds = deeplake.create("file://" + osp.abspath(osp.join(dst, split)))
        ds.add_column("images", types.Image(dtype="uint8", sample_compression=compression))
        ds.add_column("labels", types.ClassLabel("uint32"))
        ds.add_column("file_name", types.Text())
        ds["labels"].metadata["class_names"] = classes
        ds.metadata["image_folder"] = {"split": split}
        for start in tqdm(range(0, len(files), _BATCH), desc=f"{split} -> deeplake",
                          disable=not progress):
            batch = files[start:start + _BATCH]
            images = []
            for _, name in batch:
                with open(osp.join(splits[split], name), "rb") as f:
                    images.append(f.read())
            ds.append({"images": images, "labels": [label for label, _ in batch],
                       "file_name": [name for _, name in batch]})
        ds.commit(f"cplugins data convert: image folder {osp.abspath(splits[split])}/ "
                  f"({len(files)} images, {len(classes)} classes)")
        written.append(osp.join(dst, split))
    return written


def deeplake_to_folder(src: str, dst: str, progress: bool = True) -> list[str]:
    """Write Deep Lake classification datasets back as ``dst/<split>/<class>/<file>``."""
    deeplake = import_deeplake()
    written = []
    for split, path in deeplake_splits(src).items():
        ds = deeplake.open_read_only("file://" + osp.abspath(path))
        target = osp.join(dst, split)
        refuse_existing([target])
        for name in ds["labels"].metadata["class_names"]:  # empty classes stay
            os.makedirs(osp.join(target, name), exist_ok=True)
        names = _column(ds, "file_name")
        for row in tqdm(range(len(ds)), desc=f"{split} -> folder", disable=not progress):
            with open(osp.join(target, str(names[row])), "wb") as f:
                f.write(bytes(ds["images"].get_bytes(row)))
        written.append(target)
    return written


# --- mmseg img_dir / ann_dir (semantic segmentation) <-> Deep Lake ---------------------------
_SEG_DIRS = ("img_dir", "ann_dir")


def is_mmseg(root: str) -> bool:
    """``root`` has mmseg's ``img_dir/`` and ``ann_dir/`` folders."""
    return all(osp.isdir(osp.join(root, d)) for d in _SEG_DIRS)


def _files_under(folder: str) -> list[str]:
    """Every file under ``folder``, as sorted ``/``-separated relative paths."""
    return sorted(osp.relpath(osp.join(top, name), folder).replace(os.sep, "/")
                  for top, _, names in os.walk(folder) for name in names)


def mmseg_pairs(root: str) -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """``{split: (compression, [(image, label map), ...])}`` of an mmseg folder: the image
    ``img_dir/<split>/x.<ext>`` pairs with ``ann_dir/<split>/x.png``; raises on anything that
    would not come back (an unpaired file, mixed image formats, a loose file)."""
    found = {}
    for sub in _SEG_DIRS:
        entries = sorted(os.listdir(osp.join(root, sub)))
        loose = [e for e in entries if not osp.isdir(osp.join(root, sub, e))]
        if loose:
            raise ConvertError(f"{root!r}: {sub}/{loose[0]} is not in a split folder; an mmseg "
                               f"set keeps files in {sub}/<split>/ (nothing written)")
        found[sub] = entries
    if found["img_dir"] != found["ann_dir"] or not found["img_dir"]:
        raise ConvertError(f"{root!r}: img_dir/ and ann_dir/ must hold the same split folders; "
                           f"found img_dir: {', '.join(found['img_dir']) or 'none'}, ann_dir: "
                           f"{', '.join(found['ann_dir']) or 'none'}")
    splits = {}
    for split in found["img_dir"]:
        images = _files_under(osp.join(root, "img_dir", split))
        maps = _files_under(osp.join(root, "ann_dir", split))
        not_png = [m for m in maps if not m.lower().endswith(".png")]
        if not_png:
            raise ConvertError(f"{root!r}: ann_dir/{split}/{not_png[0]} is not a PNG label map")
        map_of = {osp.splitext(m)[0]: m for m in maps}
        paired = {map_of.get(osp.splitext(i)[0]) for i in images}
        unpaired = ([f"img_dir/{split}/{i}" for i in images if osp.splitext(i)[0] not in map_of]
                    + [f"ann_dir/{split}/{m}" for m in maps if m not in paired])
        if unpaired or not images:
            raise ConvertError(f"{root!r}: {unpaired[0] if unpaired else f'img_dir/{split}/'} "
                               f"has no pair; each img_dir/{split}/x.<ext> needs "
                               f"ann_dir/{split}/x.png ({len(unpaired)} unpaired)")
        kinds = {_COMPRESSION.get(osp.splitext(i)[1].lower()) for i in images}
        if None in kinds or len(kinds) != 1:
            raise ConvertError(f"{root!r}: img_dir/{split}/ images must all be PNG or all JPEG "
                               f"to be stored unchanged; found "
                               f"{sorted({osp.splitext(i)[1] for i in images})}")
        splits[split] = (kinds.pop(), [(i, map_of[osp.splitext(i)[0]]) for i in images])
    return splits


def _top_level_files(root: str) -> dict[str, str]:
    """``{name: base64 content}`` of the files beside ``img_dir/`` and ``ann_dir/``
    (``classes.txt``, a manifest...); raises on other folders."""
    files = {}
    for name in sorted(os.listdir(root)):
        path = osp.join(root, name)
        if name in _SEG_DIRS:
            continue
        if not osp.isfile(path):
            raise ConvertError(f"{root!r}: {name}/ is neither img_dir/ nor ann_dir/ and would "
                               f"not be converted (nothing written)")
        with open(path, "rb") as f:
            files[name] = base64.b64encode(f.read()).decode("ascii")
    return files


def mmseg_to_deeplake(src: str, dst: str, progress: bool = True) -> list[str]:
    """Each split of the mmseg folder ``src`` becomes ``dst/<split>``: the image bytes
    (``Image``), the label-map PNG bytes (``SegmentMask``, with the class names and palette
    of ``classes.txt`` or the synthetic-data manifest), ``file_name``, ``seg_file_name``; the
    files beside ``img_dir/`` go to the metadata."""
    from cplugins.data.layouts import declared_segmentation_classes

    deeplake = import_deeplake()
    types = deeplake.types
    splits = mmseg_pairs(src)
    refuse_existing(osp.join(dst, s) for s in splits)
    extra_files = _top_level_files(src)
    classes, palette = declared_segmentation_classes(src)
    written = []
    for split, (compression, pairs) in splits.items():
        ds = deeplake.create("file://" + osp.abspath(osp.join(dst, split)))
        ds.add_column("images", types.Image(dtype="uint8", sample_compression=compression))
        ds.add_column("masks", types.SegmentMask(dtype="uint8", sample_compression="png"))
        ds.add_column("file_name", types.Text())
        ds.add_column("seg_file_name", types.Text())
        if classes is not None:
            ds["masks"].metadata["class_names"] = list(classes)
        if palette is not None:
            ds["masks"].metadata["palette"] = [list(p) for p in palette]
        ds.metadata["mmseg"] = {"split": split, "files": extra_files}
        bar = tqdm(total=len(pairs), desc=f"{split} -> deeplake", unit="img",
                   disable=not progress)
        for start in range(0, len(pairs), _BATCH):
            batch = pairs[start:start + _BATCH]
            rows = defaultdict(list)
            for image, seg_map in batch:
                for column, path in (("images", osp.join(src, "img_dir", split, image)),
                                     ("masks", osp.join(src, "ann_dir", split, seg_map))):
                    with open(path, "rb") as f:
                        rows[column].append(f.read())
                rows["file_name"].append(image)
                rows["seg_file_name"].append(seg_map)
            ds.append(dict(rows))
            bar.update(len(batch))
        bar.close()
        ds.commit(f"cplugins data convert: mmseg {osp.abspath(osp.join(src, 'img_dir', split))}/ "
                  f"with label maps {osp.abspath(osp.join(src, 'ann_dir', split))}/ "
                  f"({len(pairs)} images)")
        written.append(osp.join(dst, split))
    return written


def deeplake_to_mmseg(src: str, dst: str, progress: bool = True) -> list[str]:
    """Write the Deep Lake segmentation datasets of ``src`` back as ``dst/img_dir/<split>/``,
    ``dst/ann_dir/<split>/`` and the files that were beside them."""
    deeplake = import_deeplake()
    opened = {}
    for split, path in deeplake_splits(src).items():
        ds = deeplake.open_read_only("file://" + osp.abspath(path))
        if "mmseg" not in ds.metadata.keys():
            raise ConvertError(f"{path!r}: no metadata['mmseg'] (not converted from an mmseg "
                               f"folder by `cplugins data convert`)")
        opened[split] = (ds, dict(ds.metadata["mmseg"]))
    for split in opened:
        for sub in _SEG_DIRS:
            if osp.exists(osp.join(dst, sub, split)):
                raise ConvertError(f"{osp.join(dst, sub, split)} exists already; choose an "
                                   f"empty DST (nothing written)")
    written = []
    for split, (ds, meta) in opened.items():
        for name, content in dict(meta["files"]).items():
            with open(osp.join(_made(dst), name), "wb") as f:
                f.write(base64.b64decode(content))
        names, seg_names = _column(ds, "file_name"), _column(ds, "seg_file_name")
        for row in tqdm(range(len(ds)), desc=f"{split} -> mmseg", unit="img",
                        disable=not progress):
            for sub, column, name in (("img_dir", "images", names[row]),
                                      ("ann_dir", "masks", seg_names[row])):
                path = osp.join(dst, sub, split, str(name))
                with open(osp.join(_made(osp.dirname(path)), osp.basename(path)), "wb") as f:
                    f.write(bytes(ds[column].get_bytes(row)))
        written += [osp.join(dst, sub, split) for sub in _SEG_DIRS]
    return written


def _made(folder: str) -> str:
    os.makedirs(folder, exist_ok=True)
    return folder


#: target format -> the dataset metadata key the converter writes for it
_WRITTEN_AS = {"coco": "coco", "folder": "image_folder", "mmseg": "mmseg"}
_FROM_DEEPLAKE = {"coco": deeplake_to_coco, "folder": deeplake_to_folder,
                  "mmseg": deeplake_to_mmseg}


def _written_as(src: str) -> str:
    """``coco``, ``folder`` or ``mmseg``: what the Deep Lake datasets of ``src`` were
    converted from."""
    deeplake = import_deeplake()
    kinds = set()
    for path in deeplake_splits(src).values():
        keys = deeplake.open_read_only("file://" + osp.abspath(path)).metadata.keys()
        kinds.add(next((kind for kind, key in _WRITTEN_AS.items() if key in keys), "?"))
    if len(kinds) != 1 or "?" in kinds:
        raise ConvertError(f"{src!r}: pass --to {' or --to '.join(_WRITTEN_AS)} (the datasets "
                           f"do not say what they were converted from)")
    return kinds.pop()


def convert(src: str, dst: str, to: str | None = None, progress: bool = True) -> list[str]:
    """Convert ``src`` (format detected) to ``to`` (default: the other format)."""
    if not osp.isdir(src):
        raise ConvertError(f"{src!r}: no such directory")
    source_is_deeplake = bool(deeplake_splits(src))
    to = to or (_written_as(src) if source_is_deeplake else "deeplake")
    if to in _FROM_DEEPLAKE:
        if not source_is_deeplake:
            raise ConvertError(f"--to {to}: {src!r} is not a Deep Lake dataset nor a folder "
                               f"of them")
        return _FROM_DEEPLAKE[to](src, dst, progress)
    if to == "deeplake":
        if source_is_deeplake:
            raise ConvertError(f"--to deeplake: {src!r} is a Deep Lake dataset already")
        if is_mmseg(src):  # before folder_splits: img_dir/ and ann_dir/ look like splits
            return mmseg_to_deeplake(src, dst, progress)
        half = [d for d in _SEG_DIRS if osp.isdir(osp.join(src, d))]
        if half:  # not an image-folder set with a split named img_dir
            raise ConvertError(f"{src!r} has {half[0]}/ but no "
                               f"{'ann_dir' if half[0] == 'img_dir' else 'img_dir'}/; an mmseg "
                               f"set needs both (nothing written)")
        if folder_splits(src):
            return folder_to_deeplake(src, dst, progress)
        return coco_to_deeplake(src, dst, progress)
    raise ConvertError(f"--to {to!r}: allowed: deeplake, {', '.join(_FROM_DEEPLAKE)}")
