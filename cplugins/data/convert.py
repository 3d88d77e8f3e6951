"""``cplugins data convert SRC DST [--to deeplake|coco|folder|mmseg]`` (light: the conversion
itself lives in the ``cplugins-deeplake`` plugin and is imported only when the command runs)."""
from __future__ import annotations

import sys

INSTALL = "pip install cplugins-deeplake (datasets/deeplake in this repository)"


def cmd_data_convert(args) -> int:
    try:
        from cplugins_deeplake.convert import ConvertError, convert
    except ImportError as exc:
        print(f"error: cplugins data convert needs the cplugins-deeplake plugin ({exc}): "
              f"{INSTALL}", file=sys.stderr)
        return 2
    from cplugins_deeplake.source import DeepLakeError

    try:
        written = convert(args.src, args.dst, args.to)
    except (ConvertError, DeepLakeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    return 0


def add_parser(data_sub) -> None:
    """Add ``convert`` to the ``cplugins data`` sub-commands."""
    p_convert = data_sub.add_parser(
        "convert", help="convert a COCO folder, an image-folder set or an mmseg set to Deep "
                        "Lake datasets (one per split) or back",
        description="Convert between a COCO folder (annotations/instances_<split>.json and the "
                    "image folders), an image-folder classification set (<split>/<class>/*) "
                    "or an mmseg segmentation set (img_dir/<split>/x.<ext> with "
                    "ann_dir/<split>/x.png) and Deep Lake datasets (DST/<split>), losslessly: "
                    "the original image and label-map bytes, file names, boxes, labels and "
                    "class names. The source format is detected; each split is one commit "
                    "naming the source.")
    p_convert.add_argument("src", help="COCO folder, Deep Lake dataset or folder of them")
    p_convert.add_argument("dst", help="output folder (must not hold the outputs already)")
    p_convert.add_argument("--to", choices=("deeplake", "coco", "folder", "mmseg"),
                           help="target format (default: the other one)")
    p_convert.set_defaults(func=cmd_data_convert)
