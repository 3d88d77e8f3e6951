"""Hook implementations of cplugins-deeplake (light: imports neither deeplake nor torch)."""
from cplugins import ModuleSpec, hookimpl


@hookimpl
def cplugins_modules() -> list[ModuleSpec]:
    return [
        ModuleSpec("DeepLakeDetDataset", "cplugins_deeplake.dataset:DeepLakeDetDataset",
                   "mmdet::dataset"),
        ModuleSpec("LoadImageFromDeepLake", "cplugins_deeplake.transforms:LoadImageFromDeepLake",
                   "mmdet::transform"),
    ]
