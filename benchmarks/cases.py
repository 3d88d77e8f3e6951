"""Benchmark cases of this repository's literal references (``--plugin benchmarks/cases.py``).

The issue's comparison points that are not part of any plugin: the RFA branch of AugFPN against
a literal re-implementation of the authors' code (``reference_rfa.py``), the SRS of
SoftRoIExtractor against its literal reference (``reference_srs.py``), its two pooling backends
against each other (gather vs mmcv RoIAlign), and the whole-detector
comparison of this repository's ablation configs (full AugFPN vs FPN, R18, synthetic shapes).
Plain data, no torch: the CLI loads this file with its directory on ``sys.path``, so
``reference_rfa:LiteralRFA`` resolves.
"""
from __future__ import annotations

from pathlib import Path

from cplugins import hookimpl
from cplugins.cases import BenchmarkCase

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
#: Faster R-CNN R50 C5: batch 2 of 800x1216 images -> (2, 2048, 25, 38)
C5_INPUTS = dict(generator="feature_pyramid", channels=[2048], strides=[32],
                 image_size=(800, 1216), batch=2, single=True)
CONFIGS = REPO / "configs" / "augfpn"
#: the ablation's full AugFPN (RFA + CS + SRS) and FPN detectors on the synthetic shapes
FULL_R18 = CONFIGS / "faster-rcnn_r18_augfpn_300i_shapes.py"
FPN_R18 = CONFIGS / "faster-rcnn_r18_fpn_300i_shapes.py"
#: the RoI extractors' inputs: R50 pyramid (256 channels) of 2x800x1216, 512 RoIs per image
ROI_INPUTS = dict(generator="rois", channels=[256] * 4, strides=[4, 8, 16, 32],
                  image_size=(800, 1216), batch=2, rois_per_image=512)


def reference_cases() -> list[BenchmarkCase]:
    """The literal-reference cases whose reference files exist next to this one."""
    cases = [
        BenchmarkCase(
            "RFA-vs-literal",
            dict(type="cplugins_augfpn.augfpn:ResidualFeatureAugmentation", in_channels=2048,
                 out_channels=256),
            C5_INPUTS,
            baseline=dict(type="reference_rfa:LiteralRFA", in_channels=2048, out_channels=256),
            baseline_label="LiteralRFA", weight_sync="reference_rfa:copy_rfa_weights",
            equivalent=True,
            description="AugFPN's RFA branch vs the paper's code taken literally (R50 C5)"),
    ]
    if (HERE / "reference_srs.py").is_file():
        extractor = dict(out_channels=256, featmap_strides=[4, 8, 16, 32])
        cases.append(BenchmarkCase(
            "SRS-vs-literal",
            dict(type="cplugins_augfpn.soft_roi_extractor:SoftRoIExtractor",
                 roi_layer=dict(type="RoIAlign", output_size=7, sampling_ratio=2), **extractor),
            ROI_INPUTS,
            baseline=dict(type="reference_srs:LiteralSRS", sampling_ratio=2, **extractor),
            baseline_label="LiteralSRS", weight_sync="reference_srs:copy_srs_weights",
            equivalent=True, needs_ops=True, scope="mmdet",
            description="Soft RoI Selection vs the paper's code taken literally (1024 RoIs)"))
        srs = dict(type="SoftRoIExtractor",
                   roi_layer=dict(type="RoIAlign", output_size=7, sampling_ratio=2), **extractor)
        cases.append(BenchmarkCase(
            "SRS-gather-vs-mmcv", dict(srs, backend="gather"), ROI_INPUTS,
            baseline=dict(srs, backend="mmcv"), baseline_label="SoftRoIExtractor (mmcv)",
            weight_sync="cplugins.bench.sync:share_weights", equivalent=True, needs_ops=True,
            scope="mmdet",
            description="SoftRoIExtractor's pooling backends: one embedding_bag gather vs "
                        "mmcv RoIAlign (backend='auto' takes the gather on CPU only)"))
    if FULL_R18.is_file() and FPN_R18.is_file():
        cases.append(BenchmarkCase(
            "FasterRCNN-R18-AugFPN-full-shapes", {}, dict(
                generator="detection_batch", image_size=(256, 320), batch=2, num_gt=4),
            baseline={}, baseline_label="FasterRCNN-R18-FPN-shapes", kind="detector",
            config=str(FULL_R18), baseline_config=str(FPN_R18), needs_ops=True,
            description="the ablation's detectors (R18, 128-channel pyramid, 256x320): full "
                        "AugFPN vs FPN"))
    return cases


@hookimpl
def cplugins_benchmark_cases() -> list[BenchmarkCase]:
    return reference_cases()
