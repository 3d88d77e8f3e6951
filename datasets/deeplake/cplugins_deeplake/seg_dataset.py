"""``DeepLakeSegDataset``: an mmseg semantic-segmentation dataset read from Deep Lake 4
(one image and one label map, a ``SegmentMask`` column, per row)."""
from __future__ import annotations

from typing import Any

from mmseg.datasets import BaseSegDataset

from .columns import SEG_REQUIRED, resolve_tensors
from .dataset import DeepLakeRows, _column, open_configured
from .source import DeepLakeError

#: BaseSegDataset arguments that name files; the rows of the Deep Lake dataset replace them
_FILE_ARGUMENTS = ("ann_file", "data_prefix", "img_suffix", "seg_map_suffix")


class DeepLakeSegDataset(DeepLakeRows, BaseSegDataset):
    """Semantic-segmentation dataset of a Deep Lake 4 dataset; images are decoded per sample
    by ``LoadImageFromDeepLake`` and label maps by ``LoadAnnotationsFromDeepLake`` (in place of
    ``LoadImageFromFile`` and mmseg's ``LoadAnnotations``; the rest of a stock pipeline and
    ``IoUMetric`` work unchanged).

    Args: ``path``, ``version``, ``query``, ``view``, ``creds``, ``token`` and the
    ``deeplake_*`` aliases as ``DeepLakeDetDataset``; ``tensors``: ``{img, gt_seg_map: column}``
    (inferred from the ``Image`` and ``SegmentMask`` kinds when omitted). Class names (and a
    palette) come from the label-map column's ``metadata['class_names']``
    (``metadata['palette']``) or ``metainfo``. Other arguments: mmseg's ``BaseSegDataset``
    (``pipeline``, ``test_mode``, ``reduce_zero_label``, ``ignore_index``, ``metainfo``...).
    """

    METAINFO: dict = dict()

    def __init__(self, path: str | None = None, version: str | None = None,
                 query: str | None = None, view: str | None = None,
                 tensors: dict | None = None, creds: dict | None = None,
                 token: str | None = None, **kwargs: Any) -> None:
        given = dict(path=path, version=version, view=view, tensors=tensors, creds=creds,
                     token=token)
        for name in _FILE_ARGUMENTS:
            if kwargs.pop(name, None):
                raise DeepLakeError(f"DeepLakeSegDataset: {name} is not used (images and label "
                                    f"maps come from the Deep Lake dataset); remove it")
        self.source, self._data = open_configured("DeepLakeSegDataset", given, query, kwargs)
        self.tensors = resolve_tensors(self._data, given["tensors"], self.source.path,
                                       SEG_REQUIRED)
        metainfo = dict(kwargs.pop("metainfo", None) or {})
        metainfo.update(self._class_meta(metainfo))
        super().__init__(ann_file="", metainfo=metainfo, **kwargs)

    def _class_meta(self, given: dict) -> dict:
        """``classes`` (and ``palette``) of the label-map column, checked against ``given``."""
        column = self._data[self.tensors["gt_seg_map"]]
        keys = column.metadata.keys()
        names = tuple(column.metadata["class_names"]) if "class_names" in keys else None
        if names is None and not given.get("classes"):
            raise DeepLakeError(f"{self.source.path!r}: column {column.name!r} has no "
                                f"metadata['class_names']; pass metainfo=dict(classes=[...])")
        if names is not None and given.get("classes") and tuple(given["classes"]) != names:
            raise DeepLakeError(f"{self.source.path!r}: metainfo classes "
                                f"{tuple(given['classes'])} differ from column "
                                f"{column.name!r}'s class_names {names}")
        meta: dict = {"classes": names if names is not None else tuple(given["classes"])}
        if "palette" in keys and "palette" not in given:
            meta["palette"] = [list(colour) for colour in column.metadata["palette"]]
        return meta

    def load_data_list(self) -> list[dict]:
        data, t, path = self.rows(), self.tensors, self.source.path
        names = {c.name for c in data.schema.columns}
        files = _column(data, "file_name") if "file_name" in names else None
        seg_files = _column(data, "seg_file_name") if "seg_file_name" in names else None
        return [dict(
            img_path=str(files[row]) if files is not None else f"{path}[{row}]",
            seg_map_path=(str(seg_files[row]) if seg_files is not None
                          else f"{path}[{row}].{t['gt_seg_map']}"),
            label_map=self.label_map, reduce_zero_label=self.reduce_zero_label,
            seg_fields=[], deeplake_source=self.source, deeplake_row=row,
            deeplake_column=t["img"], deeplake_seg_column=t["gt_seg_map"])
            for row in range(len(data))]
