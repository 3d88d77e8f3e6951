"""Consistent Supervision in two-stage and one-stage detectors: auxiliary loss terms in training,
no auxiliary computation at inference, gradient paths, equivalence with the stock detectors at
weight 0, and construction errors. Tiny detectors on 96x128 shapes images (CPU, about 20 s).
"""
from __future__ import annotations

import copy

import cplugins_augfpn  # noqa: F401  (imports cplugins first, registers the modules)
import pytest
import torch
from cplugins_augfpn.consistent_supervision import (
    CSRoIHead,
    CSSingleStageDetector,
    CSTwoStageDetector,
)
from cplugins_augfpn.soft_roi_extractor import AllLevelRoIExtractor, SoftRoIExtractor
from helpers import count_calls

STOCK_RCNN_KEYS = {"loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "acc", "loss_bbox"}
#: the authors' per-level CS terms, for the 4 laterals of Faster R-CNN
AUX_RCNN_KEYS = {f"aux_{term}_level{level}" for term in ("loss_cls", "acc", "loss_bbox")
                 for level in range(4)}
AUX_RCNN_LOSSES = sorted(k for k in AUX_RCNN_KEYS if "loss" in k)


def total(losses: dict, prefix: str = "") -> torch.Tensor:
    """Sum of the ``loss`` terms whose name starts with ``prefix`` (lists summed too)."""
    out = 0.0
    for key, value in losses.items():
        if "loss" in key and key.startswith(prefix):
            out = out + (sum(value) if isinstance(value, (list, tuple)) else value)
    return out


def seeded_loss(model, data: dict) -> dict:
    torch.manual_seed(123)  # the RoI sampler draws from torch's generator
    return model.loss(data["inputs"], copy.deepcopy(data["data_samples"]))


# ------------------------------------------------------------------------------ two-stage
def test_two_stage_training_has_aux_terms_inference_does_not_compute_them(
        faster_rcnn_cfg, build_detector, det_batch):
    model = build_detector(faster_rcnn_cfg(extractor="SoftRoIExtractor"))
    assert isinstance(model, CSTwoStageDetector) and isinstance(model.roi_head, CSRoIHead)
    assert isinstance(model.roi_head.bbox_roi_extractor, SoftRoIExtractor)
    assert isinstance(model.roi_head.aux_roi_extractor, AllLevelRoIExtractor)
    head = model.roi_head
    # the auxiliary extractor, the auxiliary head's classifier (its channels-last path runs
    # the head's layers without head.forward) and the main head
    calls = count_calls(head.aux_roi_extractor, head.aux_bbox_head.fc_cls, head.bbox_head)

    model.train()
    data = det_batch(model)
    losses = seeded_loss(model, data)
    assert set(losses) == STOCK_RCNN_KEYS | AUX_RCNN_KEYS
    assert calls == [1, 1, 1]
    assert all(torch.isfinite(total(losses, k)) for k in ("", "aux_"))
    total(losses).backward()
    # every parameter of the neck and heads (ResNet zero-inits its blocks' last BN, which
    # zeroes the first step's gradients inside the blocks; its stem still gets some)
    assert model.backbone.conv1.weight.grad.abs().sum() > 0
    for name, p in model.named_parameters():
        if not name.startswith("backbone."):
            assert p.grad is not None and p.grad.abs().sum() > 0, name

    model.eval()
    val = det_batch(model, "val")
    with torch.no_grad():
        results = model.predict(val["inputs"], val["data_samples"])
    assert calls == [1, 1, 2]  # the main head ran, the auxiliary branch did not
    assert len(results) == 2 and all("pred_instances" in r for r in results)


def test_two_stage_train_steps_update_the_auxiliary_head(faster_rcnn_cfg, build_detector,
                                                         shapes_items):
    """Real optimisation steps (mmengine train_step): aux terms logged, aux head learns."""
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import build_optim_wrapper

    model = build_detector(faster_rcnn_cfg(extractor="SoftRoIExtractor"))
    wrapper = build_optim_wrapper(model, dict(type="OptimWrapper",
                                              optimizer=dict(type="AdamW", lr=1e-3)))
    before = model.roi_head.aux_bbox_head.fc_cls.weight.detach().clone()
    model.train()
    for _ in range(2):
        log = model.train_step(pseudo_collate(copy.deepcopy(shapes_items["train"][:2])), wrapper)
    assert AUX_RCNN_KEYS <= set(log)
    assert torch.isfinite(log["loss"])
    assert not torch.equal(before, model.roi_head.aux_bbox_head.fc_cls.weight)


def test_aux_loss_supervises_the_pre_fusion_laterals(faster_rcnn_cfg, build_detector, det_batch):
    """The auxiliary terms alone reach the lateral convs, not RFA (the authors supervise the
    laterals before the residual is added) nor the fused outputs' convs."""
    model = build_detector(faster_rcnn_cfg())
    model.train()
    losses = seeded_loss(model, det_batch(model))
    total(losses, "aux_").backward()
    neck = model.neck
    assert all(c.conv.weight.grad.abs().sum() > 0 for c in neck.lateral_convs)
    assert all(p.grad is None for p in neck.rfa.parameters())
    assert all(c.conv.weight.grad is None for c in neck.fpn_convs)
    assert all(p.grad is None for p in model.rpn_head.parameters())
    assert all(p.grad is None for p in model.roi_head.bbox_head.parameters())
    assert all(p.grad is not None for p in model.roi_head.aux_bbox_head.parameters())


def test_aux_targets_are_the_main_targets_on_every_level(faster_rcnn_cfg, build_detector,
                                                         det_batch, monkeypatch):
    """The auxiliary head is trained on the main head's sampled RoIs and targets, one loss
    per lateral (the authors' per-level terms), each on the K RoIs pooled from that lateral."""
    model = build_detector(faster_rcnn_cfg())
    head = model.roi_head
    seen = {"main": [], "aux": []}
    for name, module in (("main", head.bbox_head), ("aux", head.aux_bbox_head)):
        def spy(cls_score, bbox_pred, rois, *targets, _loss=module.loss, _name=name, **kw):
            seen[_name].append((cls_score, rois, targets))
            return _loss(cls_score, bbox_pred, rois, *targets, **kw)
        monkeypatch.setattr(module, "loss", spy)
    seeded_loss(model, det_batch(model))
    [(main_scores, rois, targets)] = seen["main"]
    levels = len(model.neck.lateral_convs)
    assert len(seen["aux"]) == levels
    assert (targets[0] < 3).any()  # some foreground RoIs
    scores = []
    for aux_scores, rois_aux, targets_aux in seen["aux"]:
        assert aux_scores.shape[0] == main_scores.shape[0]
        torch.testing.assert_close(rois_aux, rois, rtol=0, atol=0)
        for main, aux in zip(targets, targets_aux):
            torch.testing.assert_close(aux, main, rtol=0, atol=0)
        scores.append(aux_scores)
    assert not torch.equal(scores[0], scores[-1])  # pooled from different laterals


def test_aux_channels_last_path_equals_the_head_forward(faster_rcnn_cfg, build_detector):
    """The channels-last auxiliary path (pooled (K, L, 7, 7, C) into the first FC with its
    weight permuted) == pooling (K, L, C, 7, 7) and calling the head: outputs and gradients."""
    model = build_detector(faster_rcnn_cfg())
    head = model.roi_head
    torch.manual_seed(0)
    channels = head.aux_roi_extractor.out_channels
    laterals = [torch.randn(2, channels, 64 // s, 80 // s, requires_grad=True)
                for s in head.aux_roi_extractor.featmap_strides]
    xy = torch.rand(12, 2) * torch.tensor([60.0, 44.0])
    rois = torch.cat([torch.arange(12)[:, None] % 2, xy, xy + 4 + 16 * torch.rand(12, 2)], 1)
    params = [laterals[0], laterals[-1], head.aux_bbox_head.shared_fcs[0].weight,
              head.aux_bbox_head.fc_reg.weight]
    results = []
    for channels_last in (True, False):
        cls_score, bbox_pred, levels = head.aux_forward(laterals, rois, channels_last)
        assert levels == len(laterals) and cls_score.shape[0] == 12 * levels
        loss = (cls_score * torch.linspace(-1, 1, cls_score.numel()).view_as(cls_score)).sum() \
            + (bbox_pred ** 2).sum()
        results.append((cls_score, bbox_pred, torch.autograd.grad(loss, params)))
    (cls_a, box_a, grads_a), (cls_b, box_b, grads_b) = results
    torch.testing.assert_close(cls_a, cls_b, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(box_a, box_b, rtol=1e-5, atol=1e-5)
    for a, b in zip(grads_a, grads_b):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * b.abs().max().item())


def test_aux_weight_scales_only_the_aux_terms(faster_rcnn_cfg, build_detector, det_batch):
    light = build_detector(faster_rcnn_cfg(aux_loss_weight=0.25))
    heavy = build_detector(faster_rcnn_cfg(aux_loss_weight=0.5))
    heavy.load_state_dict(light.state_dict())
    data = det_batch(light)
    a, b = seeded_loss(light, data), seeded_loss(heavy, data)
    for key in STOCK_RCNN_KEYS | (AUX_RCNN_KEYS - set(AUX_RCNN_LOSSES)):
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    for key in AUX_RCNN_LOSSES:
        assert a[key] > 0
        torch.testing.assert_close(2 * a[key], b[key], rtol=1e-6, atol=0)


def test_weight_zero_with_stock_extractor_equals_stock_faster_rcnn(faster_rcnn_cfg,
                                                                    build_detector, det_batch):
    """CS weight 0 + SingleRoIExtractor == FasterRCNN with the AugFPN (RFA) neck: losses,
    gradients and predictions, exactly."""
    cs = build_detector(faster_rcnn_cfg(aux_loss_weight=0.0))
    stock = build_detector(faster_rcnn_cfg(detector="FasterRCNN", roi_head="StandardRoIHead"))
    assert type(stock).__name__ == "FasterRCNN"
    assert cs.roi_head.aux_bbox_head is None and cs.roi_head.aux_roi_extractor is None
    stock.load_state_dict(cs.state_dict())  # strict: the same parameters
    data = det_batch(cs)
    cs.train()
    stock.train()
    got, want = seeded_loss(cs, data), seeded_loss(stock, data)
    assert set(got) == set(want) == STOCK_RCNN_KEYS
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=0, atol=0)
    total(got).backward()
    total(want).backward()
    stock_params = dict(stock.named_parameters())
    for name, p in cs.named_parameters():
        if p.grad is not None or stock_params[name].grad is not None:
            torch.testing.assert_close(p.grad, stock_params[name].grad, rtol=0, atol=0)
    cs.eval()
    stock.eval()
    val = det_batch(cs, "val")
    with torch.no_grad():
        a = cs.predict(val["inputs"], copy.deepcopy(val["data_samples"]))
        b = stock.predict(val["inputs"], copy.deepcopy(val["data_samples"]))
    for x, y in zip(a, b):
        torch.testing.assert_close(x.pred_instances.bboxes, y.pred_instances.bboxes, rtol=0, atol=0)
        torch.testing.assert_close(x.pred_instances.scores, y.pred_instances.scores, rtol=0, atol=0)


# ------------------------------------------------------------------------------ one-stage
def test_one_stage_default_is_the_authors_rcnn_branch(retinanet_cfg, build_detector, det_batch,
                                                      monkeypatch):
    """RetinaNet + CS (default aux_mode='rcnn'), the authors' single_stage.py: the dense
    head's detections (detached, proposal NMS) are assigned and sampled, pooled from the 3
    laterals (C3-C5) and supervised per level by an auxiliary R-CNN box head; only the
    laterals and that head learn from the auxiliary terms; prediction never runs it."""
    from mmdet.models.losses import CrossEntropyLoss, SmoothL1Loss
    from mmdet.models.roi_heads.bbox_heads import Shared2FCBBoxHead

    model = build_detector(retinanet_cfg())
    assert isinstance(model, CSSingleStageDetector) and model.aux_mode == "rcnn"
    head, extractor = model.aux_bbox_head, model.aux_roi_extractor
    assert isinstance(head, Shared2FCBBoxHead) and head.num_classes == 3
    assert head.shared_fcs[0].out_features == 1024
    assert isinstance(head.loss_cls, CrossEntropyLoss) and not head.loss_cls.use_sigmoid
    assert isinstance(head.loss_bbox, SmoothL1Loss) and head.loss_bbox.beta == 1.0
    assert isinstance(extractor, AllLevelRoIExtractor) and extractor.featmap_strides == [8, 16, 32]
    cfg = model.aux_train_cfg
    assert (cfg.sampler.num, cfg.sampler.pos_fraction, cfg.assigner.pos_iou_thr,
            cfg.proposal.nms.iou_threshold) == (512, 0.25, 0.5, 0.7)

    seen = []
    assign = model.aux_assigner.assign
    monkeypatch.setattr(model.aux_assigner, "assign",
                        lambda pred, *a, **k: seen.append(pred.priors) or assign(pred, *a, **k))
    calls = count_calls(model.bbox_head, extractor, head.fc_cls)
    model.train()
    data = det_batch(model)
    losses = model.loss(data["inputs"], copy.deepcopy(data["data_samples"]))
    aux_keys = {f"aux_{t}_level{i}" for t in ("loss_cls", "loss_bbox", "acc") for i in range(3)}
    assert set(losses) == {"loss_cls", "loss_bbox"} | aux_keys
    assert calls == [1, 1, 1]
    # the proposals are the dense head's own detections with the proposal settings
    with torch.no_grad():
        x = model.neck(model.backbone(data["inputs"]))
        metas = [s.metainfo for s in data["data_samples"]]
        want = model.bbox_head.predict_by_feat(*model.bbox_head(x), batch_img_metas=metas,
                                               cfg=cfg.proposal)
    assert len(seen) == 2 and seen[0].shape[0] > 0
    for got, ref in zip(seen, want):
        torch.testing.assert_close(got, ref.bboxes, rtol=0, atol=0)
    total(losses, "aux_").backward()
    assert all(c.conv.weight.grad.abs().sum() > 0 for c in model.neck.lateral_convs)
    assert all(c.conv.weight.grad is None for c in model.neck.fpn_convs)
    assert all(p.grad is None for p in model.neck.rfa.parameters())
    assert all(p.grad is None for p in model.bbox_head.parameters())  # detached proposals
    assert all(p.grad is not None for p in head.parameters())

    model.eval()
    val = det_batch(model, "val")
    with torch.no_grad():
        results = model.predict(val["inputs"], val["data_samples"])
    assert calls == [3, 1, 1]  # the main head ran (once above, once here), no aux call
    assert all("pred_instances" in r for r in results)


@pytest.mark.parametrize("separate_head", [False, True], ids=["shared-head", "aux-head"])
def test_one_stage_dense_head_mode_has_aux_terms_inference_does_not_compute_them(
        retinanet_cfg, build_detector, det_batch, separate_head):
    """The opt-in aux_mode='dense_head' (not the authors'): the dense head on the pre-fusion
    pyramid."""
    kwargs = {"aux_mode": "dense_head"}
    if separate_head:
        kwargs["aux_bbox_head"] = copy.deepcopy(retinanet_cfg()["bbox_head"])
    model = build_detector(retinanet_cfg(**kwargs))
    assert isinstance(model, CSSingleStageDetector)
    aux = model.aux_bbox_head if separate_head else model.bbox_head
    assert model.aux_head is aux
    calls = count_calls(model.bbox_head, aux)

    model.train()
    data = det_batch(model)
    losses = model.loss(data["inputs"], data["data_samples"])
    assert set(losses) == {"loss_cls", "loss_bbox", "aux_loss_cls", "aux_loss_bbox"}
    # RetinaHead's losses are per level: the auxiliary pyramid has the same 5 levels
    assert len(losses["aux_loss_cls"]) == len(losses["loss_cls"]) == 5
    assert calls == ([1, 1] if separate_head else [2, 2])
    total(losses, "aux_").backward()
    assert all(c.conv.weight.grad.abs().sum() > 0 for c in model.neck.lateral_convs)
    assert all(c.conv.weight.grad is None for c in model.neck.fpn_convs[:3])  # fused levels
    if separate_head:
        assert all(p.grad is None for p in model.bbox_head.parameters())

    model.eval()
    val = det_batch(model, "val")
    with torch.no_grad():
        results = model.predict(val["inputs"], val["data_samples"])
    assert calls == ([2, 1] if separate_head else [3, 3])  # one main head call, no aux call
    assert all("pred_instances" in r for r in results)


def test_one_stage_weight_zero_equals_stock_retinanet(retinanet_cfg, build_detector, det_batch):
    cs = build_detector(retinanet_cfg(aux_loss_weight=0,
                                      aux_bbox_head=copy.deepcopy(retinanet_cfg()["bbox_head"])))
    assert cs.aux_bbox_head is None  # not built at weight 0
    stock = build_detector(retinanet_cfg(detector="RetinaNet"))
    stock.load_state_dict(cs.state_dict())
    data = det_batch(cs)
    got = cs.loss(data["inputs"], data["data_samples"])
    want = stock.loss(data["inputs"], data["data_samples"])
    assert set(got) == set(want) == {"loss_cls", "loss_bbox"}
    for key in want:
        for g, w in zip(got[key], want[key]):
            torch.testing.assert_close(g, w, rtol=0, atol=0)
    total(got).backward()
    total(want).backward()
    for (name, p), q in zip(cs.named_parameters(), stock.parameters()):
        if p.grad is not None or q.grad is not None:
            torch.testing.assert_close(p.grad, q.grad, rtol=0, atol=0, msg=name)


# ------------------------------------------------------------------------------ bad input
def _build_error(build_detector, cfg: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        build_detector(cfg)


@pytest.mark.parametrize(
    "change,error,match",
    [
        (dict(neck="FPN"), TypeError,
         r"CSTwoStageDetector: neck must provide forward_with_laterals.*got FPN"),
        (dict(roi_head="StandardRoIHead"), TypeError,
         r"CSTwoStageDetector: roi_head must be a CSRoIHead.*got StandardRoIHead"),
        (dict(aux_loss_weight=-1), ValueError,
         r"CSRoIHead: aux_loss_weight must be a finite number >= 0.*got -1"),
        (dict(aux_loss_weight="0.25"), ValueError, r"aux_loss_weight must be .*got '0.25'"),
        (dict(aux_loss_weight=True), ValueError, r"aux_loss_weight must be .*got True"),
        (dict(aux_roi_extractor=dict(type="SoftRoIExtractor", out_channels=32,
                                     featmap_strides=[4, 8, 16, 32],
                                     roi_layer=dict(type="RoIAlign", output_size=7))),
         TypeError, r"aux_roi_extractor must build an AllLevelRoIExtractor.*'SoftRoIExtractor'"),
        (dict(aux_roi_extractor=dict(type="AllLevelRoIExtractor", out_channels=32,
                                     featmap_strides=[4, 8, 16, 32, 64],
                                     roi_layer=dict(type="RoIAlign", output_size=7))),
         ValueError, r"roi_head.aux_roi_extractor.featmap_strides=\[4, 8, 16, 32, 64\] has 5 "
                     r"levels but the neck has 4 pre-fusion laterals"),
        (dict(aux_roi_extractor=dict(type="AllLevelRoIExtractor", out_channels=16,
                                     featmap_strides=[4, 8, 16, 32],
                                     roi_layer=dict(type="RoIAlign", output_size=7))),
         ValueError, r"roi_head.aux_roi_extractor.out_channels=16 does not match "
                     r"neck.out_channels=32"),
    ],
    ids=lambda v: repr(v)[:60] if isinstance(v, dict) else None,
)
def test_two_stage_construction_errors(faster_rcnn_cfg, build_detector, change, error, match):
    _build_error(build_detector, faster_rcnn_cfg(**change), error, match)


def test_two_stage_construction_errors_from_the_components(faster_rcnn_cfg, build_detector):
    """Bad neck / SRS / head arguments fail while the detector is built, naming them."""
    cfg = faster_rcnn_cfg(extractor="SoftRoIExtractor")
    bad = copy.deepcopy(cfg)
    bad["neck"]["pool_ratios"] = (0.1, 1.5)
    _build_error(build_detector, bad, ValueError,
                 r"pool_ratios must be a non-empty sequence of numbers in \(0, 1\]")
    bad = copy.deepcopy(cfg)
    bad["neck"]["num_outs"] = 3
    _build_error(build_detector, bad, ValueError, r"num_outs must be an int >= 4")
    bad = copy.deepcopy(cfg)
    bad["neck"].update(end_level=2, num_outs=3)  # 3 outputs, but SRS reads 4 levels
    bad["roi_head"]["aux_roi_extractor"] = dict(
        type="AllLevelRoIExtractor", roi_layer=dict(type="RoIAlign", output_size=7),
        out_channels=32, featmap_strides=[4, 8, 16])
    _build_error(build_detector, bad, ValueError,
                 r"bbox_roi_extractor.featmap_strides=\[4, 8, 16, 32\] has 4 levels but the "
                 r"neck has num_outs=3")
    bad = copy.deepcopy(cfg)
    bad["roi_head"]["bbox_roi_extractor"]["featmap_strides"] = []
    _build_error(build_detector, bad, ValueError,
                 r"SoftRoIExtractor: featmap_strides must be a non-empty list")
    bad = copy.deepcopy(cfg)
    bad["roi_head"]["aux_bbox_head"] = dict(copy.deepcopy(cfg["roi_head"]["bbox_head"]),
                                            num_classes=5)
    _build_error(build_detector, bad, ValueError,
                 r"aux_bbox_head.num_classes must equal bbox_head.num_classes=3.*got 5")


def test_mismatched_backbone_and_neck_fail_with_the_feature_count(faster_rcnn_cfg,
                                                                   build_detector, det_batch):
    cfg = faster_rcnn_cfg()
    cfg["backbone"]["out_indices"] = (1, 2, 3)  # 3 feature maps for 4 in_channels
    model = build_detector(cfg)
    data = det_batch(model)
    with pytest.raises(ValueError, match=r"AugFPN expects one feature map per in_channels "
                                         r"entry \(len\(in_channels\)=4\), got 3"):
        model.loss(data["inputs"], data["data_samples"])


def test_cs_roi_head_without_laterals_fails(faster_rcnn_cfg, build_detector, det_batch):
    """CSRoIHead in a stock FasterRCNN would silently skip CS: it refuses instead."""
    model = build_detector(faster_rcnn_cfg(detector="FasterRCNN"))
    data = det_batch(model)
    with pytest.raises(ValueError, match=r"CSRoIHead.loss: laterals=None but "
                                         r"aux_loss_weight=0.25; use type='CSTwoStageDetector'"):
        model.loss(data["inputs"], data["data_samples"])


@pytest.mark.parametrize(
    "change,error,match",
    [
        (dict(neck="FPN"), TypeError,
         r"CSSingleStageDetector: neck must provide forward_with_laterals.*got FPN"),
        (dict(aux_loss_weight=float("nan")), ValueError,
         r"CSSingleStageDetector: aux_loss_weight must be a finite number >= 0.*got nan"),
        (dict(aux_mode="dense"), ValueError,
         r"CSSingleStageDetector: aux_mode must be one of \('rcnn', 'dense_head'\), got 'dense'"),
        (dict(aux_train_cfg=dict(sampler=dict(type="RandomSampler", num=8, pos_fraction=0.5),
                                 rpn=dict())), ValueError,
         r"aux_train_cfg keys must be among \['assigner', 'pos_weight', 'proposal', "
         r"'sampler'\], got \['rpn'\]"),
        (dict(aux_mode="dense_head", aux_train_cfg=dict()), ValueError,
         r"aux_mode='dense_head' uses neither"),
    ],
    ids=str,
)
def test_one_stage_construction_errors(retinanet_cfg, build_detector, change, error, match):
    _build_error(build_detector, retinanet_cfg(**change), error, match)


def test_one_stage_rcnn_mode_refuses_a_dense_aux_head(retinanet_cfg, build_detector):
    """A dense-head aux_bbox_head (the opt-in mode's) in the default R-CNN mode is refused."""
    cfg = retinanet_cfg(aux_bbox_head=copy.deepcopy(retinanet_cfg()["bbox_head"]))
    _build_error(build_detector, cfg, TypeError,
                 r"aux_mode='rcnn' needs an R-CNN box head as aux_bbox_head .*got RetinaHead; "
                 r"a dense head goes with aux_mode='dense_head'")
