"""``LoadImageFromDeepLake``: decode a sample's image from its Deep Lake dataset."""
from __future__ import annotations

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform

from .source import DeepLakeError, open_column


class LoadImageFromDeepLake(BaseTransform):
    """In place of ``LoadImageFromFile``: reads the row's stored (encoded) image bytes and
    decodes them with mmcv exactly as ``LoadImageFromFile`` decodes a file.

    Required keys: ``deeplake_source``, ``deeplake_row``, ``deeplake_column`` (set by
    ``DeepLakeDetDataset``). Added keys: ``img`` ``(H, W, 3)`` uint8 BGR (float32 with
    ``to_float32``), ``img_shape``, ``ori_shape``. The dataset is opened once per process.
    """

    def __init__(self, to_float32: bool = False, color_type: str = "color",
                 imdecode_backend: str = "cv2") -> None:
        self.to_float32 = to_float32
        self.color_type = color_type
        self.imdecode_backend = imdecode_backend

    def transform(self, results: dict) -> dict:
        if "deeplake_source" not in results:
            raise DeepLakeError("LoadImageFromDeepLake: the sample has no deeplake_source; use "
                                "it with DeepLakeDetDataset (LoadImageFromFile for files)")
        column = open_column(results["deeplake_source"], results["deeplake_column"])
        encoded = column.get_bytes(results["deeplake_row"])
        img = mmcv.imfrombytes(bytes(encoded), flag=self.color_type,
                               backend=self.imdecode_backend)
        if img is None:
            raise DeepLakeError(f"{results['deeplake_source'].path!r} row "
                                f"{results['deeplake_row']}: image could not be decoded")
        if self.to_float32:
            img = img.astype(np.float32)
        results["img"] = img
        results["img_shape"] = img.shape[:2]
        results["ori_shape"] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(to_float32={self.to_float32}, "
                f"color_type={self.color_type!r}, imdecode_backend={self.imdecode_backend!r})")
