"""Hook implementations of cplugins-augfpn (light: imports no torch)."""
from cplugins import ModuleSpec, hookimpl


@hookimpl
def cplugins_modules() -> list[ModuleSpec]:
    return [
        ModuleSpec("AugFPN", "cplugins_augfpn.augfpn:AugFPN", "mmdet::model"),
        # Soft RoI Selection and Consistent Supervision (AugFPN's other two components)
        ModuleSpec("SoftRoIExtractor", "cplugins_augfpn.soft_roi_extractor:SoftRoIExtractor",
                   "mmdet::model"),
        ModuleSpec("AllLevelRoIExtractor",
                   "cplugins_augfpn.soft_roi_extractor:AllLevelRoIExtractor", "mmdet::model"),
        ModuleSpec("CSRoIHead", "cplugins_augfpn.consistent_supervision:CSRoIHead",
                   "mmdet::model"),
        # Consistent Supervision (+ Soft RoI Selection) on Cascade (Mask) R-CNN
        ModuleSpec("CSCascadeRoIHead", "cplugins_augfpn.cascade:CSCascadeRoIHead",
                   "mmdet::model"),
        ModuleSpec("CSTwoStageDetector",
                   "cplugins_augfpn.consistent_supervision:CSTwoStageDetector", "mmdet::model"),
        ModuleSpec("CSSingleStageDetector",
                   "cplugins_augfpn.consistent_supervision:CSSingleStageDetector",
                   "mmdet::model"),
    ]


@hookimpl
def cplugins_configs() -> list[str]:
    """The model zoo: every config of cplugins_augfpn/configs (see its README.md)."""
    from cplugins_augfpn.configs import config_paths  # pathlib only

    return config_paths()


#: Faster R-CNN R50 shapes: batch 2 of 800x1216 images, ResNet-50 levels C2..C5
_R50 = dict(in_channels=[256, 512, 1024, 2048], out_channels=256, num_outs=5)
_R50_INPUTS = dict(generator="feature_pyramid", channels=[256, 512, 1024, 2048],
                   strides=[4, 8, 16, 32], image_size=(800, 1216), batch=2)
#: CPU RoIAlign with adaptive sampling (mmdet's 0) dominates a CPU step; same for both models
_DETECTOR_COMMON = {"model.roi_head.bbox_roi_extractor.roi_layer.sampling_ratio": 2}
#: all three AugFPN components on mmdet's Faster R-CNN R50 config (the zoo's
#: configs/faster-rcnn_r50_augfpn_1x_coco.py)
_FULL_AUGFPN = {"model.type": "CSTwoStageDetector", "model.neck.type": "AugFPN",
                "model.roi_head.type": "CSRoIHead", "model.roi_head.aux_loss_weight": 0.25,
                "model.roi_head.bbox_roi_extractor.type": "SoftRoIExtractor"}
_DETECTION_BATCH = dict(generator="detection_batch", image_size=(800, 1216), batch=2, num_gt=8)
#: RoI extractors: R50 pyramid (256 channels, strides 4..32) of 2x800x1216, 512 RoIs per image
_EXTRACTOR = dict(roi_layer=dict(type="RoIAlign", output_size=7, sampling_ratio=2),
                  out_channels=256, featmap_strides=[4, 8, 16, 32])
_ROI_INPUTS = dict(generator="rois", channels=[256] * 4, strides=[4, 8, 16, 32],
                   image_size=(800, 1216), batch=2, rois_per_image=512)


@hookimpl
def cplugins_benchmark_cases() -> list:
    """AugFPN vs mmdet FPN (neck alone, R50 shapes), SoftRoIExtractor vs SingleRoIExtractor,
    and Faster R-CNN R50 with the AugFPN neck / the full AugFPN vs the FPN model."""
    from cplugins.cases import BenchmarkCase

    return [
        BenchmarkCase(
            "AugFPN", dict(type="AugFPN", **_R50), _R50_INPUTS,
            baseline=dict(type="FPN", **_R50), scope="mmdet",
            weight_sync="cplugins.bench.sync:share_weights",
            description="neck forward/backward at Faster R-CNN R50 shapes (2x800x1216)"),
        BenchmarkCase(
            "FasterRCNN-R50-AugFPN", {"model.neck.type": "AugFPN", **_DETECTOR_COMMON},
            _DETECTION_BATCH, baseline=dict(_DETECTOR_COMMON),
            baseline_label="FasterRCNN-R50-FPN",
            kind="detector", config="mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py",
            needs_ops=True,
            description="train step and inference of Faster R-CNN R50, AugFPN vs FPN neck"),
        BenchmarkCase(
            "SoftRoIExtractor", dict(type="SoftRoIExtractor", **_EXTRACTOR), _ROI_INPUTS,
            baseline=dict(type="SingleRoIExtractor", **_EXTRACTOR), scope="mmdet",
            needs_ops=True,
            description="Soft RoI Selection vs mmdet's per-level extractor (1024 RoIs, R50)"),
        BenchmarkCase(
            "FasterRCNN-R50-AugFPN-full", {**_FULL_AUGFPN, **_DETECTOR_COMMON},
            _DETECTION_BATCH, baseline=dict(_DETECTOR_COMMON),
            baseline_label="FasterRCNN-R50-FPN", kind="detector",
            config="mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py", needs_ops=True,
            description="Faster R-CNN R50 with RFA + Consistent Supervision + Soft RoI "
                        "Selection vs the FPN model"),
    ]
