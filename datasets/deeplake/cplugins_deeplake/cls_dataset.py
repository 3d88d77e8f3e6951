"""``DeepLakeClsDataset``: an mmpretrain classification dataset read from Deep Lake 4
(one image and one ``ClassLabel`` per row)."""
from __future__ import annotations

from typing import Any

import numpy as np
from mmpretrain.datasets import BaseDataset

from .columns import CLS_REQUIRED, resolve_tensors
from .dataset import DeepLakeRows, _column, open_configured
from .source import DeepLakeError


class DeepLakeClsDataset(DeepLakeRows, BaseDataset):
    """Classification dataset of a Deep Lake 4 dataset; images are decoded per sample by
    ``LoadImageFromDeepLake``.

    Args: ``path``, ``version``, ``query``, ``view``, ``creds``, ``token`` and the
    ``deeplake_*`` aliases as ``DeepLakeDetDataset``; ``tensors``: ``{img, gt_label: column}``
    (inferred from the ``Image`` and ``ClassLabel`` kinds when omitted); other arguments:
    mmpretrain's ``BaseDataset`` (``pipeline``, ``test_mode``, ``metainfo``...).
    """

    def __init__(self, path: str | None = None, version: str | None = None,
                 query: str | None = None, view: str | None = None,
                 tensors: dict | None = None, creds: dict | None = None,
                 token: str | None = None, **kwargs: Any) -> None:
        given = dict(path=path, version=version, view=view, tensors=tensors, creds=creds,
                     token=token)
        self.source, self._data = open_configured("DeepLakeClsDataset", given, query, kwargs)
        self.tensors = resolve_tensors(self._data, given["tensors"], self.source.path,
                                       CLS_REQUIRED)
        column = self._data[self.tensors["gt_label"]]
        if "class_names" not in column.metadata.keys():
            raise DeepLakeError(f"{self.source.path!r}: column {column.name!r} has no "
                                f"metadata['class_names']")
        metainfo = dict(kwargs.pop("metainfo", None) or {})
        metainfo["classes"] = tuple(column.metadata["class_names"])
        super().__init__(ann_file="", metainfo=metainfo, **kwargs)

    def load_data_list(self) -> list[dict]:
        data, t, path = self.rows(), self.tensors, self.source.path
        names = {c.name for c in data.schema.columns}
        labels = _column(data, t["gt_label"])
        files = _column(data, "file_name") if "file_name" in names else None
        num_classes = len(self.metainfo["classes"])
        data_list = []
        for row in range(len(data)):
            label = np.asarray(labels[row]).reshape(-1)
            if label.size != 1 or not 0 <= int(label[0]) < num_classes:
                raise DeepLakeError(
                    f"{path!r} row {row}: column {t['gt_label']!r} holds {label.tolist()}; "
                    f"expected one class id in 0..{num_classes - 1}")
            data_list.append(dict(
                img_path=str(files[row]) if files is not None else f"{path}[{row}]",
                gt_label=int(label[0]), deeplake_source=self.source, deeplake_row=row,
                deeplake_column=t["img"]))
        return data_list
