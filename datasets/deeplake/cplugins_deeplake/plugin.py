"""Hook implementations of cplugins-deeplake (light: imports neither deeplake nor torch).

Loaded detached from the package (see ``cplugins.manager.load_hook_module``): imports only
``cplugins``; the benchmark case names its data writer as an import target."""
from cplugins import ModuleSpec, hookimpl


@hookimpl
def cplugins_modules() -> list[ModuleSpec]:
    return [
        ModuleSpec("DeepLakeDetDataset", "cplugins_deeplake.dataset:DeepLakeDetDataset",
                   "mmdet::dataset"),
        ModuleSpec("DeepLakeClsDataset", "cplugins_deeplake.cls_dataset:DeepLakeClsDataset",
                   "mmpretrain::dataset"),
        ModuleSpec("DeepLakeSegDataset", "cplugins_deeplake.seg_dataset:DeepLakeSegDataset",
                   "mmseg::dataset"),
        ModuleSpec("LoadImageFromDeepLake", "cplugins_deeplake.transforms:LoadImageFromDeepLake",
                   ("mmdet::transform", "mmpretrain::transform", "mmseg::transform")),
        ModuleSpec("LoadAnnotationsFromDeepLake",
                   "cplugins_deeplake.seg_transforms:LoadAnnotationsFromDeepLake",
                   "mmseg::transform"),
    ]


@hookimpl
def cplugins_examples() -> list:
    from cplugins.check import Example

    return [Example("DeepLakeDetDataset",
                    dict(pipeline=[dict(type="LoadImageFromDeepLake"),
                                   dict(type="LoadAnnotations", with_bbox=True)]),
                    setup="cplugins_deeplake.example:example_data")]


def _pipeline(load: str, size: tuple[int, int]) -> list[dict]:
    return [dict(type=load), dict(type="LoadAnnotations", with_bbox=True),
            dict(type="Resize", scale=(size[1], size[0]), keep_ratio=True),
            dict(type="RandomFlip", prob=0.5), dict(type="PackDetInputs")]


def _loader(dataset: dict) -> dict:
    return dict(batch_size=2, sampler=dict(type="DefaultSampler", shuffle=False),
                collate_fn=dict(type="pseudo_collate"), dataset=dataset)


def loading_case(images: int = 32, size: tuple[int, int] = (256, 320)):
    """``DeepLake-loading``: samples/s of ``DeepLakeDetDataset`` + ``LoadImageFromDeepLake``
    vs ``CocoDataset`` + ``LoadImageFromFile`` on the same images and pipeline (LoadAnnotations,
    Resize, RandomFlip 0.5, PackDetInputs; batch 2, in order), 0 and 2 workers."""
    from cplugins.cases import BenchmarkCase

    return BenchmarkCase(
        "DeepLake-loading",
        _loader(dict(type="DeepLakeDetDataset", path="{deeplake_path}",
                     pipeline=_pipeline("LoadImageFromDeepLake", size))),
        dict(generator="cplugins_deeplake.bench:shapes_copies", images=images, size=size),
        baseline=_loader(dict(type="CocoDataset", data_root="{coco_root}",
                              ann_file="{coco_ann}", data_prefix=dict(img="{coco_img}"),
                              metainfo=dict(classes="{classes}"),
                              pipeline=_pipeline("LoadImageFromFile", size))),
        baseline_label="CocoDataset (COCO folder)", scope="mmdet", kind="dataloader",
        workers=(0, 2),
        description=f"full mmdet train pipeline, {images} shapes images {size[0]}x{size[1]} "
                    "PNG: Deep Lake copy vs COCO folder (samples/s)")


@hookimpl
def cplugins_benchmark_cases() -> list:
    """``DeepLake-loading``: the mmdet train pipeline from Deep Lake vs the COCO folder."""
    return [loading_case()]


class DeepLakeSource:
    """Templates' ``--data PATH`` of ``train/`` and ``val/`` Deep Lake datasets (light: the
    reader is imported in the methods; see :mod:`cplugins_deeplake.layout`)."""

    name = "Deep Lake"

    def recognizes(self, root: str) -> bool:
        import os.path as osp

        return any(osp.isdir(osp.join(root, split, "_deeplake_log")) for split in ("train", "val"))

    def resolve(self, task: str, root: str):
        from cplugins_deeplake.layout import resolve

        return resolve(task, root, self)

    def dataset(self, task: str, split: str, where: dict, pipeline: list, kwargs: dict) -> dict:
        from cplugins_deeplake.layout import dataset

        return dataset(task, split, where["deeplake"], pipeline, kwargs)


@hookimpl
def cplugins_data_sources() -> list:
    return [DeepLakeSource()]


def _convert(args) -> int:
    import sys

    from cplugins_deeplake.convert import ConvertError, convert
    from cplugins_deeplake.source import DeepLakeError

    try:
        written = convert(args.src, args.dst, args.to)
    except (ConvertError, DeepLakeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    return 0


@hookimpl
def cplugins_data_commands(subparsers) -> None:
    """``cplugins data convert SRC DST [--to deeplake|coco|folder|mmseg]``."""
    parser = subparsers.add_parser(
        "convert", help="convert a COCO folder, an image-folder set or an mmseg set to Deep "
                        "Lake datasets (one per split) or back",
        description="Convert between a COCO folder (annotations/instances_<split>.json and the "
                    "image folders), an image-folder classification set (<split>/<class>/*) "
                    "or an mmseg segmentation set (img_dir/<split>/x.<ext> with "
                    "ann_dir/<split>/x.png) and Deep Lake datasets (DST/<split>), losslessly: "
                    "the original image and label-map bytes, file names, boxes, labels and "
                    "class names. The source format is detected; each split is one commit "
                    "naming the source.")
    parser.add_argument("src", help="COCO folder, Deep Lake dataset or folder of them")
    parser.add_argument("dst", help="output folder (must not hold the outputs already)")
    parser.add_argument("--to", choices=("deeplake", "coco", "folder", "mmseg"),
                        help="target format (default: the other one)")
    parser.set_defaults(func=_convert)
