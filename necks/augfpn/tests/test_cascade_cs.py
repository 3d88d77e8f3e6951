"""Consistent Supervision on cascade RoI heads (CSCascadeRoIHead).

Outcomes: a one-stage cascade computes exactly CSRoIHead's losses (the two-stage branch the
authors' computation is checked against); with weight 0 the cascade trains and predicts exactly
as mmdet's stock Cascade R-CNN; the supervised stages are the configured ones, each weighted by
its stage loss weight; prediction never runs the branch; bad arguments get one-line errors.
Tiny models (ResNet-18 with 16 base channels, 96x128 shapes images): seconds.
"""
from __future__ import annotations

import copy

import cplugins_augfpn  # noqa: F401  (imports cplugins first, registers the modules)
import pytest
import torch

STDS = ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067])


@pytest.fixture()
def tiny_cascade(faster_rcnn_cfg):
    """``tiny_cascade(detector, roi_head, num_stages, **roi_head_kwargs)``: mmdet's Cascade
    R-CNN (its base model's RoI head and train_cfg) on the tiny Faster R-CNN's pyramid."""
    return lambda *args, **kwargs: _tiny_cascade(faster_rcnn_cfg, *args, **kwargs)


@pytest.fixture()
def faster(faster_rcnn_cfg):
    return faster_rcnn_cfg(extractor="SingleRoIExtractor")


def _tiny_cascade(faster_rcnn_cfg, detector: str = "CSTwoStageDetector",
                  roi_head: str = "CSCascadeRoIHead", num_stages: int = 3,
                  **roi_head_kwargs) -> dict:
    from mmengine.config import Config

    base = Config.fromstring("_base_ = 'mmdet::_base_/models/cascade-rcnn_r50_fpn.py'",
                             ".py").model.to_dict()
    model = faster_rcnn_cfg(detector=detector)
    tiny_head = model["roi_head"]
    head = base["roi_head"]
    head.update(type=roi_head, num_stages=num_stages,
                stage_loss_weights=head["stage_loss_weights"][:num_stages], **roi_head_kwargs)
    head["bbox_roi_extractor"] = copy.deepcopy(tiny_head["bbox_roi_extractor"])
    head["bbox_head"] = head["bbox_head"][:num_stages]
    for box_head, stds in zip(head["bbox_head"], STDS):
        box_head.update({k: tiny_head["bbox_head"][k]
                         for k in ("in_channels", "fc_out_channels", "num_classes")})
        box_head["bbox_coder"]["target_stds"] = stds
    model["roi_head"] = head
    model["train_cfg"]["rcnn"] = base["train_cfg"]["rcnn"][:num_stages]
    for stage in model["train_cfg"]["rcnn"]:
        stage["sampler"]["num"] = 64
    return model


def _losses(model, batch, seed: int = 0) -> dict:
    model.train()
    torch.manual_seed(seed)
    return model.loss(batch["inputs"], copy.deepcopy(batch["data_samples"]))


def _copy_weights(source, target) -> None:
    missing, unexpected = target.load_state_dict(source.state_dict(), strict=False)
    assert not unexpected and all("aux_" in k for k in missing), (missing, unexpected)


def test_one_stage_cascade_computes_csroihead_losses(build_detector, det_batch, tiny_cascade,
                                                     faster):
    cfg = tiny_cascade(num_stages=1)  # its one stage: Faster R-CNN's head, extractor, sampling
    cfg["roi_head"].update(bbox_head=[faster["roi_head"]["bbox_head"]],
                           bbox_roi_extractor=faster["roi_head"]["bbox_roi_extractor"])
    cfg["train_cfg"]["rcnn"] = [faster["train_cfg"]["rcnn"]]
    cascade = build_detector(cfg)
    single = build_detector(faster)
    # same weights: the cascade's stage-0 modules are ModuleLists of one, the auxiliary branch
    # lives under aux_*[stage] instead of aux_*
    state = {}
    for key, value in cascade.state_dict().items():
        key = key.replace("bbox_head.0.", "bbox_head.").replace(
            "aux_bbox_heads.0.", "aux_bbox_head.").replace(
            "aux_roi_extractors.0.", "aux_roi_extractor.")
        state[key] = value
    single.load_state_dict(state)
    batch = det_batch(cascade)
    got = _losses(cascade, batch)
    expected = _losses(single, batch)
    assert sorted(got) == sorted(f"s0.{k}" if not k.startswith("loss_rpn") else k
                                 for k in expected)
    for key, value in expected.items():
        name = key if key.startswith("loss_rpn") else f"s0.{key}"
        for a, b in zip(*(v if isinstance(v, list) else [v] for v in (got[name], value))):
            torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    assert any(k.startswith("s0.aux_loss_bbox_level") for k in got)


def test_weight_zero_is_the_stock_cascade(build_detector, det_batch, tiny_cascade):
    stock = build_detector(tiny_cascade(detector="CascadeRCNN", roi_head="CascadeRoIHead"))
    off = build_detector(tiny_cascade(aux_loss_weight=0))
    on = build_detector(tiny_cascade())
    assert sum(p.numel() for n, p in off.named_parameters() if "aux_" in n) == 0
    _copy_weights(stock, off)
    _copy_weights(stock, on)
    batch = det_batch(stock)
    expected = _losses(stock, batch)
    assert _losses(off, batch).keys() == expected.keys()
    main = {k: v for k, v in _losses(on, batch).items() if ".aux_" not in k}
    for losses in (_losses(off, batch), main):
        assert losses.keys() == expected.keys()
        for key in expected:
            a, b = losses[key], expected[key]
            for x, y in zip(a if isinstance(a, list) else [a], b if isinstance(b, list) else [b]):
                torch.testing.assert_close(x, y, rtol=0, atol=0, msg=key)

    test = det_batch(stock, "val")
    for model in (stock, on):
        model.eval()
    with torch.no_grad():
        want = stock.predict(test["inputs"], copy.deepcopy(test["data_samples"]))
        calls = []
        hook = on.roi_head.aux_bbox_heads["0"].register_forward_hook(lambda *a: calls.append(1))
        got = on.predict(test["inputs"], copy.deepcopy(test["data_samples"]))
        hook.remove()
    assert not calls  # prediction never runs the auxiliary branch
    for a, b in zip(got, want):
        torch.testing.assert_close(a.pred_instances.bboxes, b.pred_instances.bboxes)
        torch.testing.assert_close(a.pred_instances.scores, b.pred_instances.scores)


@pytest.mark.parametrize("stages", [(0,), (1, 2), (0, 1, 2)])
def test_supervised_stages_and_their_stage_weights(stages, build_detector, det_batch,
                                                   tiny_cascade):
    model = build_detector(tiny_cascade(aux_stages=stages))
    batch = det_batch(model)
    losses = _losses(model, batch)
    supervised = {int(k[1]) for k in losses if ".aux_loss" in k}
    assert supervised == set(stages)
    levels = {k.rsplit("level", 1)[1] for k in losses if k.startswith(f"s{stages[0]}.aux_loss")}
    assert levels == {"0", "1", "2", "3"}  # every lateral of the tiny AugFPN

    # the auxiliary terms of a stage scale with its stage loss weight, nothing else moves
    weights = list(model.roi_head.stage_loss_weights)
    model.roi_head.stage_loss_weights = [2 * w for w in weights]
    doubled = _losses(model, batch)
    for key, value in losses.items():
        if "loss" in key and not key.startswith("loss_rpn"):
            torch.testing.assert_close(doubled[key], 2 * value, msg=key)

    total = sum(v for k, v in losses.items() if ".aux_loss" in k)
    total.backward()
    grad = model.neck.lateral_convs[0].conv.weight.grad  # the laterals get the CS gradient
    assert grad is not None and grad.abs().sum() > 0


@pytest.mark.parametrize("stages, message", [
    ((), "aux_stages must be distinct stage indices in 0..2 (e.g. (0,)), got ()"),
    ((3,), "got (3,)"), ((0, 0), "got (0, 0)"), ("0", "got '0'"), ((True,), "got (True,)")])
def test_bad_aux_stages_are_refused(stages, message, build_detector, tiny_cascade):
    with pytest.raises(ValueError, match=r"CSCascadeRoIHead: aux_stages") as info:
        build_detector(tiny_cascade(aux_stages=stages))
    assert message in str(info.value)


def test_the_detector_takes_a_cascade_only_with_consistent_supervision(build_detector,
                                                                       tiny_cascade):
    with pytest.raises(TypeError, match="CSCascadeRoIHead") as info:
        build_detector(tiny_cascade(roi_head="CascadeRoIHead"))
    assert "got CascadeRoIHead" in str(info.value)
    cfg = tiny_cascade()
    cfg["roi_head"]["bbox_roi_extractor"]["out_channels"] *= 2
    with pytest.raises(ValueError, match=r"\(stage 0\): roi_head.bbox_roi_extractor.out_chan"):
        build_detector(cfg)
