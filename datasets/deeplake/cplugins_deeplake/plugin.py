"""Hook implementations of cplugins-deeplake (light: imports neither deeplake nor torch)."""
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


@hookimpl
def cplugins_benchmark_cases() -> list:
    """``DeepLake-loading``: the mmdet train pipeline from Deep Lake vs the COCO folder."""
    from cplugins_deeplake.bench import loading_case

    return [loading_case()]
