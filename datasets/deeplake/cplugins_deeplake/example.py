"""Example data for ``cplugins check``: a tiny shapes set converted to Deep Lake."""
from __future__ import annotations

import os.path as osp


def example_data(tmp_dir: str) -> dict:
    """Write 2 train images of 64x96 to ``tmp_dir`` as Deep Lake; the dataset's config keys."""
    from cplugins.shapes import make_shapes_detection

    from .convert import coco_to_deeplake

    coco = make_shapes_detection(osp.join(tmp_dir, "coco"), num_train=2, num_val=1,
                                 image_size=(64, 96), seed=0)
    coco_to_deeplake(coco["data_root"], osp.join(tmp_dir, "deeplake"), progress=False)
    return dict(path=osp.join(tmp_dir, "deeplake", "train"))
