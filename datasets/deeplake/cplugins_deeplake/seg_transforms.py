"""``LoadAnnotationsFromDeepLake``: mmseg's ``LoadAnnotations`` reading the row's label map."""
from __future__ import annotations

import mmcv
import numpy as np
from mmseg.datasets.transforms import LoadAnnotations

from .source import DeepLakeError, open_column


class LoadAnnotationsFromDeepLake(LoadAnnotations):
    """In place of mmseg's ``LoadAnnotations`` (same arguments, same ``gt_seg_map``): decodes
    the row's stored label-map bytes instead of reading ``seg_map_path``.

    Required keys: ``deeplake_source``, ``deeplake_row``, ``deeplake_seg_column`` (set by
    ``DeepLakeSegDataset``), ``reduce_zero_label``, ``label_map``, ``seg_fields``. Added key:
    ``gt_seg_map`` ``(H, W)`` uint8.
    """

    def _load_seg_map(self, results: dict) -> None:
        if "deeplake_seg_column" not in results:
            raise DeepLakeError("LoadAnnotationsFromDeepLake: the sample has no "
                                "deeplake_seg_column; use it with DeepLakeSegDataset "
                                "(mmseg's LoadAnnotations for files)")
        source, row = results["deeplake_source"], results["deeplake_row"]
        encoded = open_column(source, results["deeplake_seg_column"]).get_bytes(row)
        seg_map = mmcv.imfrombytes(bytes(encoded), flag="unchanged",
                                   backend=self.imdecode_backend)
        if seg_map is None:
            raise DeepLakeError(f"{source.path!r} row {row}: label map could not be decoded")
        results["gt_seg_map"] = _as_mmseg_labels(seg_map.squeeze().astype(np.uint8), self,
                                                 results)
        results["seg_fields"].append("gt_seg_map")


def _as_mmseg_labels(seg_map: np.ndarray, transform: LoadAnnotations,
                     results: dict) -> np.ndarray:
    """``reduce_zero_label`` and ``label_map`` applied as mmseg's
    ``LoadAnnotations._load_seg_map`` applies them (mmseg 1.2)."""
    if transform.reduce_zero_label is None:
        transform.reduce_zero_label = results["reduce_zero_label"]
    if transform.reduce_zero_label != results["reduce_zero_label"]:
        raise DeepLakeError(f"LoadAnnotationsFromDeepLake: reduce_zero_label="
                            f"{transform.reduce_zero_label} but the dataset has "
                            f"reduce_zero_label={results['reduce_zero_label']}; give the same")
    if transform.reduce_zero_label:
        seg_map[seg_map == 0] = 255
        seg_map = seg_map - 1
        seg_map[seg_map == 254] = 255
    if results.get("label_map") is not None:
        original = seg_map.copy()
        for old_id, new_id in results["label_map"].items():
            seg_map[original == old_id] = new_id
    return seg_map
