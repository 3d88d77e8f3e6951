"""Each AugFPN part against the authors' computation (``authors_reference.py``, a plain-torch
restatement of github.com/Gus-Guo/AugFPN): the project's module gets the same weights through
an explicit name map (every parameter assigned, every one of the authors' used), the same
random inputs, and must give every output within ``1e-5 * max(1, max |reference|)`` (float32).

Parts: the RFA neck in its three flavours (two-stage P2-P6 = ``HighFPN``; RetinaNet P3-P7 and
FCOS P3-P7 = ``HighFPNRetinanet``), the laterals handed to Consistent Supervision, the CS
losses per level, and Soft RoI Selection on the authors' RoI layer (mmdetection v0 RoIAlign:
``RoIAlignV0``). CPU, tiny sizes (a few seconds).
"""
from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import cplugins_augfpn  # noqa: F401  (imports cplugins first, registers the modules)
import pytest
import torch
from cplugins_augfpn.augfpn import AugFPN
from torch import Tensor, nn


def _load_authors_reference():
    """``authors_reference.py`` next to this file (the tests are not a package)."""
    path = Path(__file__).resolve().with_name("authors_reference.py")
    spec = importlib.util.spec_from_file_location("augfpn_authors_reference", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


authors = _load_authors_reference()

IN_CHANNELS = [8, 16, 24, 32]
OUT = 16
#: C2..C5 of a 384 x 480 image: top 12 x 15, RFA pools (1, 1), (2, 3), (3, 4)
SIZES = [(96, 120), (48, 60), (24, 30), (12, 15)]
STRIDES = [4, 8, 16, 32]
NUM_CLASSES = 3


def assert_matches(got: Tensor, ref: Tensor, what: str) -> None:
    """max |got - ref| <= 1e-5 * max(1, max |ref|), shapes equal."""
    assert got.shape == ref.shape, f"{what}: shape {tuple(got.shape)} != {tuple(ref.shape)}"
    bound = 1e-5 * max(1.0, ref.abs().max().item())
    diff = (got - ref).abs().max().item()
    assert diff <= bound, f"{what}: max |diff| {diff:.3g} > {bound:.3g}"


def random_params(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, Tensor]:
    """Weights ~ N(0, 1 / fan_in), biases ~ N(0, 0.1^2)."""
    gen = torch.Generator().manual_seed(seed)
    params = {}
    for name, shape in shapes.items():
        if name.endswith(".bias"):
            params[name] = 0.1 * torch.randn(shape, generator=gen)
        else:
            fan_in = math.prod(shape[1:])
            params[name] = torch.randn(shape, generator=gen) / math.sqrt(fan_in)
    return params


@torch.no_grad()
def load_mapped(module: nn.Module, params: dict[str, Tensor], name_map) -> None:
    """Assign ``params[name_map(name)]`` to every parameter of ``module``; assert that every
    parameter is assigned (no unmapped one) and every reference parameter is used."""
    used = set()
    for name, p in module.named_parameters():
        source = name_map(name)
        assert source in params, f"project parameter {name} maps to unknown {source}"
        assert p.shape == params[source].shape, f"{name} {tuple(p.shape)} vs {source}"
        p.copy_(params[source])
        used.add(source)
    assert used == set(params), f"reference parameters left unassigned: {set(params) - used}"


def neck_name(name: str) -> str:
    """AugFPN parameter -> HighFPN / HighFPNRetinanet parameter."""
    for ours, theirs in (("rfa.pool_convs.", "high_lateral_conv."),
                         ("rfa.fuse_conv.", "high_lateral_conv_attention.0."),
                         ("rfa.weight_conv.", "high_lateral_conv_attention.2.")):
        if name.startswith(ours):
            return theirs + name[len(ours):]
    return name  # lateral_convs.i.conv.*, fpn_convs.i.conv.*: the same names


def backbone_features(seed: int = 1) -> list[Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(2, c, h, w, generator=gen) for c, (h, w) in zip(IN_CHANNELS, SIZES)]


# ----------------------------------------------------------------------------- RFA necks
def test_two_stage_neck_and_cs_laterals_match_high_fpn():
    """Faster R-CNN's neck (P2-P6, extra level by max pooling) and the laterals Consistent
    Supervision reads == HighFPN's ``(outs, raw_laternals)``."""
    neck = AugFPN(IN_CHANNELS, OUT, num_outs=5)
    params = random_params(authors.high_fpn_param_shapes(IN_CHANNELS, OUT, 5))
    load_mapped(neck, params, neck_name)
    inputs = backbone_features()
    ref_outs, ref_raw = authors.high_fpn(inputs, params, num_outs=5)
    with torch.no_grad():
        outs, laterals = neck.forward_with_laterals(inputs)
        plain = neck(inputs)
    assert len(outs) == len(plain) == len(ref_outs) == 5
    for i, (a, b, ref) in enumerate(zip(outs, plain, ref_outs)):
        assert_matches(a, ref, f"P{i + 2}")
        assert_matches(b, ref, f"P{i + 2} (forward)")
    assert len(laterals) == len(ref_raw) == 4
    for i, (lat, ref) in enumerate(zip(laterals, ref_raw)):
        assert_matches(lat, ref, f"M{i + 2}")


@pytest.mark.parametrize(
    "flavour,extra,relu",
    [("retinanet", "on_input", False), ("fcos", "on_output", True)],
    ids=["retinanet", "fcos"],
)
def test_one_stage_necks_match_high_fpn_retinanet(flavour, extra, relu):
    """RetinaNet (P6 from C5) and FCOS (P6 from P5, ReLU before P7) necks, P3-P7, and their
    laterals M3-M5 == HighFPNRetinanet, whose P6 gets the global average of the RFA residual
    (and P7 is computed from that P6)."""
    neck = AugFPN(IN_CHANNELS, OUT, num_outs=5, start_level=1, add_extra_convs=extra,
                  relu_before_extra_convs=relu)
    on_inputs = extra == "on_input"
    params = random_params(authors.high_fpn_param_shapes(
        IN_CHANNELS, OUT, 5, start_level=1, extra_convs=True, extra_convs_on_inputs=on_inputs))
    load_mapped(neck, params, neck_name)
    inputs = backbone_features()
    ref_outs, ref_raw = authors.high_fpn_retinanet(
        inputs, params, num_outs=5, start_level=1, extra_convs_on_inputs=on_inputs,
        relu_before_extra_convs=relu)
    with torch.no_grad():
        outs, laterals = neck.forward_with_laterals(inputs)
        plain = neck(inputs)
    assert len(outs) == len(plain) == len(ref_outs) == 5
    for i, (a, b, ref) in enumerate(zip(outs, plain, ref_outs)):
        assert_matches(a, ref, f"{flavour} P{i + 3}")
        assert_matches(b, ref, f"{flavour} P{i + 3} (forward)")
    assert len(laterals) == len(ref_raw) == 3
    for i, (lat, ref) in enumerate(zip(laterals, ref_raw)):
        assert_matches(lat, ref, f"{flavour} M{i + 3}")


# ----------------------------------------------------------------------------- RoI pooling
def random_rois(num: int, image: tuple[int, int], seed: int = 2) -> Tensor:
    """(num, 5) RoIs on 2 images, from 1 px (narrower than every stride but the first) to
    most of the image, some touching the image's right / bottom edge."""
    gen = torch.Generator().manual_seed(seed)
    h, w = image
    size = torch.exp(torch.rand(num, 2, generator=gen) * math.log(0.8 * min(h, w)))
    xy = torch.rand(num, 2, generator=gen) * (torch.tensor([w, h]) - size)
    xy[: num // 6] = torch.tensor([w, h]) - size[: num // 6] - 1  # at the far edges
    batch = (torch.arange(num) % 2).float()[:, None]
    return torch.cat([batch, xy, xy + size], dim=1)


def pyramid(channels: int, seed: int = 3) -> list[Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(2, channels, h, w, generator=gen) for h, w in SIZES]


def test_roi_align_v0_restatement_equals_mmcv_where_the_conventions_agree():
    """Sanity check of the restatement itself: for RoIs at least one feature pixel wide on the
    level, v0's RoIAlign of ``[x1, y1, x2, y2]`` is mmcv's unaligned RoIAlign of
    ``[x1, y1, x2 + 1, y2 + 1]``."""
    from mmcv.ops import roi_align

    feat = pyramid(OUT)[1]  # stride 8
    rois = random_rois(40, (384, 480))
    rois = rois[(rois[:, 3:] - rois[:, 1:3] + 1 >= 8).all(1)]
    shifted = rois.clone()
    shifted[:, 3:] += 1
    want = roi_align(feat, shifted, 7, 1 / 8, 2, "avg", False)
    assert_matches(authors.roi_align_v0(feat, rois, 7, 1 / 8, 2), want, "roi_align_v0")


@pytest.mark.parametrize("backend", ["gather", "mmcv"])
def test_soft_roi_selection_matches_the_authors_on_their_roi_layer(backend):
    """SoftRoIExtractor with ``roi_layer=dict(type='RoIAlignV0', output_size=7,
    sampling_ratio=2)`` (the authors' ``RoIAlign(out_size=7, sample_num=2)``) ==
    soft_roi_selection.py on the same RoIs, maps and attention weights."""
    from cplugins_augfpn.soft_roi_extractor import SoftRoIExtractor

    srs = SoftRoIExtractor(roi_layer=dict(type="RoIAlignV0", output_size=7, sampling_ratio=2),
                           out_channels=OUT, featmap_strides=STRIDES, backend=backend)
    levels = len(STRIDES)
    params = random_params({
        "spatial_attention_conv.0.weight": (OUT, levels * OUT, 1, 1),
        "spatial_attention_conv.0.bias": (OUT,),
        "spatial_attention_conv.2.weight": (levels, OUT, 3, 3),
        "spatial_attention_conv.2.bias": (levels,),
    })
    names = {"fuse_conv": "spatial_attention_conv.0", "weight_conv": "spatial_attention_conv.2"}
    load_mapped(srs, params, lambda n: names[n.split(".")[0]] + "." + n.split(".")[1])
    feats, rois = pyramid(OUT), random_rois(30, (384, 480))
    ref_feats = [f.clone().requires_grad_() for f in feats]
    feats = [f.requires_grad_() for f in feats]
    ref = authors.soft_roi_selection(ref_feats, rois, STRIDES, params)
    got = srs(feats, rois)
    assert_matches(got.detach(), ref.detach(), f"SRS ({backend})")
    # and the gradients reaching the pyramid (RoIAlignV0's backward)
    weights = torch.randn(ref.shape, generator=torch.Generator().manual_seed(9))
    (ref * weights).sum().backward()
    (got * weights).sum().backward()
    for level, (a, b) in enumerate(zip(feats, ref_feats)):
        assert_matches(a.grad, b.grad, f"SRS ({backend}) d/d level {level}")


def test_roi_align_v0_needs_a_fixed_sampling_ratio():
    from cplugins_augfpn.roi_gather import RoIAlignV0

    with pytest.raises(ValueError, match=r"RoIAlignV0: sampling_ratio must be an int > 0 .*got 0"):
        RoIAlignV0(7, 1 / 8, 0)


# ----------------------------------------------------------------------------- CS losses
def _sampling_results(num_images: int = 2, seed: int = 4) -> list:
    """Real mmdet assignment and sampling of random proposals against random ground truth
    (MaxIoUAssigner 0.5 / 0.5 / 0.5, RandomSampler 64 at 0.25, gt added as proposals)."""
    from mmdet.registry import TASK_UTILS
    from mmengine.registry import init_default_scope
    from mmengine.structures import InstanceData

    init_default_scope("mmdet")
    assigner = TASK_UTILS.build(dict(type="MaxIoUAssigner", pos_iou_thr=0.5, neg_iou_thr=0.5,
                                     min_pos_iou=0.5, match_low_quality=False,
                                     ignore_iof_thr=-1))
    sampler = TASK_UTILS.build(dict(type="RandomSampler", num=64, pos_fraction=0.25,
                                    neg_pos_ub=-1, add_gt_as_proposals=True))
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # the sampler draws from torch's generator
    results = []
    for _ in range(num_images):
        gts = random_rois(5, (384, 480), seed=int(torch.randint(100, (1,), generator=gen)))
        gt = InstanceData(bboxes=gts[:, 1:],
                          labels=torch.randint(NUM_CLASSES, (5,), generator=gen))
        jitter = gts[:, 1:].repeat(10, 1) + 12 * torch.randn(50, 4, generator=gen)
        boxes = torch.cat([jitter, random_rois(50, (384, 480), seed=seed + 7)[:, 1:]])
        boxes = torch.cat([boxes[:, :2].clamp(min=0),
                           torch.maximum(boxes[:, 2:], boxes[:, :2].clamp(min=0) + 2)], 1)
        proposals = InstanceData(priors=boxes)
        assign = assigner.assign(proposals, gt)
        results.append(sampler.sample(assign, proposals, gt))
    return results


def _v0_targets(labels: Tensor, bbox_targets: Tensor, bbox_weights: Tensor
                ) -> tuple[Tensor, Tensor]:
    """mmdet 3's (K, 4) targets -> v0's class-specific (K, 4 * classes) layout (``bbox_target``
    with ``reg_classes``): the RoI's 4 targets / weights in its class's columns."""
    k = labels.numel()
    targets = bbox_targets.new_zeros(k, 4 * NUM_CLASSES)
    weights = bbox_weights.new_zeros(k, 4 * NUM_CLASSES)
    for i in torch.nonzero(labels < NUM_CLASSES).flatten().tolist():
        cols = slice(4 * int(labels[i]), 4 * int(labels[i]) + 4)
        targets[i, cols], weights[i, cols] = bbox_targets[i], bbox_weights[i]
    return targets, weights


def test_cs_losses_per_level_match_the_authors():
    """CSRoIHead.aux_loss on the main head's sampling == the authors' consistent supervision:
    every RoI pooled from each of the 4 laterals (AuxAllLevelRoIExtractor, v0 RoIAlign),
    a shared-FC auxiliary head, and per level ``alpha * CE`` + ``alpha * smooth-L1 (beta 1)``
    against the main head's targets (two_stage.py + bbox_head_auxiliary.py), alpha = 0.25."""
    from mmdet.registry import MODELS
    from mmdet.structures.bbox import bbox2roi
    from mmengine.config import ConfigDict

    roi_layer = dict(type="RoIAlign", output_size=7, sampling_ratio=2)
    head = MODELS.build(ConfigDict(
        type="CSRoIHead", aux_loss_weight=0.25,
        bbox_roi_extractor=dict(type="SingleRoIExtractor", roi_layer=roi_layer,
                                out_channels=OUT, featmap_strides=STRIDES),
        aux_roi_extractor=dict(type="AllLevelRoIExtractor",
                               roi_layer=dict(roi_layer, type="RoIAlignV0"),
                               out_channels=OUT, featmap_strides=STRIDES),
        # mmdet 3's Faster R-CNN box head (L1 regression); the auxiliary one is the authors'
        bbox_head=dict(type="Shared2FCBBoxHead", in_channels=OUT, fc_out_channels=32,
                       roi_feat_size=7, num_classes=NUM_CLASSES, reg_class_agnostic=False,
                       bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0] * 4,
                                       target_stds=[0.1, 0.1, 0.2, 0.2]),
                       loss_cls=dict(type="CrossEntropyLoss", use_sigmoid=False,
                                     loss_weight=1.0),
                       loss_bbox=dict(type="L1Loss", loss_weight=1.0)),
        train_cfg=dict(assigner=dict(type="MaxIoUAssigner", pos_iou_thr=0.5, neg_iou_thr=0.5,
                                     min_pos_iou=0.5, ignore_iof_thr=-1),
                       sampler=dict(type="RandomSampler", num=64, pos_fraction=0.25),
                       pos_weight=-1, debug=False)))
    fc = 32
    params = random_params({
        "shared_fcs.0.weight": (fc, OUT * 49), "shared_fcs.0.bias": (fc,),
        "shared_fcs.1.weight": (fc, fc), "shared_fcs.1.bias": (fc,),
        "fc_cls.weight": (NUM_CLASSES + 1, fc), "fc_cls.bias": (NUM_CLASSES + 1,),
        "fc_reg.weight": (4 * NUM_CLASSES, fc), "fc_reg.bias": (4 * NUM_CLASSES,),
    }, seed=5)
    load_mapped(head.aux_bbox_head, params, lambda name: name)  # the same names
    laterals = pyramid(OUT, seed=6)
    sampling = _sampling_results()
    with torch.no_grad():
        got = head.aux_loss(laterals, sampling)

    # the authors: the main head's targets (two_stage.py ``bbox_targets``), v0 layout
    labels, label_weights, bbox_targets, bbox_weights = head.bbox_head.get_targets(
        sampling, head.train_cfg, concat=True)
    assert (labels < NUM_CLASSES).sum() >= 4 and (labels == NUM_CLASSES).sum() >= 4
    targets, weights = _v0_targets(labels, bbox_targets, bbox_weights)
    rois = bbox2roi([res.priors for res in sampling])
    pooled = authors.all_level_pooling(laterals, rois, STRIDES)
    cls_score, bbox_pred = authors.shared_fc_head(pooled, params)
    ref = authors.aux_level_losses(cls_score, bbox_pred, labels, label_weights, targets,
                                   weights, alpha=0.25, num_level=4)
    for level in range(4):
        assert_matches(got[f"aux_loss_cls_level{level}"], ref[f"loss_cls_level{level}"],
                       f"loss_cls level {level}")
        assert_matches(got[f"aux_loss_bbox_level{level}"], ref[f"loss_reg_level{level}"],
                       f"loss_reg level {level}")
        assert ref[f"loss_reg_level{level}"] > 0
    assert {k for k in got if "loss" in k} == {
        f"aux_loss_{t}_level{i}" for t in ("cls", "bbox") for i in range(4)}
