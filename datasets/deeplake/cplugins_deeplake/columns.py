"""Which columns hold what: the ``tensors`` mapping, inferred from column kinds when omitted."""
from __future__ import annotations

from .source import DeepLakeError

#: key -> Deep Lake column kind (``TypeKind`` name) that can hold it
KINDS = {"img": "Image", "gt_bboxes": "BoundingBox", "gt_labels": "ClassLabel",
         "gt_label": "ClassLabel", "gt_seg_map": "SegmentMask"}
REQUIRED = ("img", "gt_bboxes", "gt_labels")
OPTIONAL = ("gt_ignore_flags",)
#: classification (mmpretrain): one image and one label per row
CLS_REQUIRED = ("img", "gt_label")
#: semantic segmentation (mmseg): one image and one label map (``SegmentMask``) per row
SEG_REQUIRED = ("img", "gt_seg_map")
#: columns the converter writes that an inference may use for ignore flags
IGNORE_COLUMNS = ("iscrowd",)


def column_kinds(data) -> dict[str, str]:
    """``{column: kind}`` of a dataset or view, e.g. ``{'images': 'Image'}``."""
    return {c.name: str(c.dtype.kind).rsplit(".", 1)[-1] for c in data.schema.columns}


def _listing(kinds: dict[str, str]) -> str:
    return ", ".join(f"{name} ({kind})" for name, kind in kinds.items())


def resolve_tensors(data, tensors: dict | None, path: str,
                    required: tuple[str, ...] = REQUIRED) -> dict[str, str]:
    """The ``{key: column}`` mapping: ``tensors`` checked, or inferred from the kinds."""
    kinds = column_kinds(data)
    detection = required == REQUIRED
    allowed = REQUIRED + OPTIONAL + ("gt_masks",) if detection else required
    if tensors:
        unknown = [k for k in tensors if k not in allowed]
        if unknown:
            raise DeepLakeError(f"{path!r}: tensors has unknown key(s) {', '.join(unknown)}; "
                                f"allowed: {', '.join(allowed)}")
        missing = {k: c for k, c in tensors.items() if c not in kinds}
        if missing:
            raise DeepLakeError(
                f"{path!r}: tensors names column(s) the dataset does not have: "
                + ", ".join(f"{k}={c!r}" for k, c in missing.items())
                + f"; its columns: {_listing(kinds)}")
        if "gt_masks" in tensors and kinds[tensors["gt_masks"]] != "Text":
            raise DeepLakeError(
                f"{path!r}: tensors['gt_masks'] column {tensors['gt_masks']!r} is of kind "
                f"{kinds[tensors['gt_masks']]}; allowed: Text (a JSON list per row: one COCO "
                f"segmentation, polygons or RLE, or null per box)")
        mapping = dict(tensors)
    else:
        mapping = {}
    for key in required:
        if key in mapping:
            continue
        found = [name for name, kind in kinds.items() if kind == KINDS[key]]
        if len(found) != 1:
            what = "no column" if not found else f"{len(found)} columns ({', '.join(found)})"
            raise DeepLakeError(
                f"{path!r}: cannot tell which column holds {key}: {what} of kind "
                f"{KINDS[key]}; pass tensors=dict({key}='COLUMN', ...); its columns: "
                f"{_listing(kinds)}")
        mapping[key] = found[0]
    if detection and "gt_ignore_flags" not in mapping:
        ignore = [c for c in IGNORE_COLUMNS if c in kinds]
        if ignore:
            mapping["gt_ignore_flags"] = ignore[0]
    return mapping
