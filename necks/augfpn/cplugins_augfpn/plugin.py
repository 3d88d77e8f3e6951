"""Hook implementations of cplugins-augfpn (light: imports no torch)."""
from cplugins import ModuleSpec, hookimpl


@hookimpl
def cplugins_modules() -> list[ModuleSpec]:
    return [
        ModuleSpec("AugFPN", "cplugins_augfpn.augfpn:AugFPN", "mmdet::model"),
    ]


#: Faster R-CNN R50 shapes: batch 2 of 800x1216 images, ResNet-50 levels C2..C5
_R50 = dict(in_channels=[256, 512, 1024, 2048], out_channels=256, num_outs=5)
_R50_INPUTS = dict(generator="feature_pyramid", channels=[256, 512, 1024, 2048],
                   strides=[4, 8, 16, 32], image_size=(800, 1216), batch=2)
#: CPU RoIAlign with adaptive sampling (mmdet's 0) dominates a CPU step; same for both models
_DETECTOR_COMMON = {"model.roi_head.bbox_roi_extractor.roi_layer.sampling_ratio": 2}


@hookimpl
def cplugins_benchmark_cases() -> list:
    """AugFPN vs mmdet FPN (neck alone, R50 shapes) and Faster R-CNN R50 with either neck."""
    from cplugins.bench import BenchmarkCase

    return [
        BenchmarkCase(
            "AugFPN", dict(type="AugFPN", **_R50), _R50_INPUTS,
            baseline=dict(type="FPN", **_R50), scope="mmdet",
            weight_sync="cplugins.bench.sync:share_weights",
            description="neck forward/backward at Faster R-CNN R50 shapes (2x800x1216)"),
        BenchmarkCase(
            "FasterRCNN-R50-AugFPN", {"model.neck.type": "AugFPN", **_DETECTOR_COMMON},
            dict(generator="detection_batch", image_size=(800, 1216), batch=2, num_gt=8),
            baseline=dict(_DETECTOR_COMMON), baseline_label="FasterRCNN-R50-FPN",
            kind="detector", config="mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py",
            needs_ops=True,
            description="train step and inference of Faster R-CNN R50, AugFPN vs FPN neck"),
    ]
