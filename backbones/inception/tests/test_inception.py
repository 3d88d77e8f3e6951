"""Tests of cplugins-inception: shapes, gradients, freezing, parameter counts, registries.

Everything runs real forward/backward passes on CPU with small inputs; the heavier
training tests use BNInception (11M parameters) rather than InceptionV4 (42M).
"""
from __future__ import annotations

import cplugins_inception  # noqa: F401  (the installed plugin: importing it registers it)
import pytest
import torch
from cplugins_inception.bn_inception import BLOCKS, BNInception
from cplugins_inception.inception_v4 import InceptionV4
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

CLASSES = {"InceptionV4": InceptionV4, "BNInception": BNInception}
STAGE_CHANNELS = {"InceptionV4": (192, 384, 1024, 1536), "BNInception": (192, 320, 608, 1024)}
STRIDES = (4, 8, 16, 32)


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: these tensors are tiny, and on a busy 2-core machine OpenMP's
    spinning barriers made the suite ~10x slower with 2 threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def v4_all() -> nn.Module:
    """One InceptionV4 returning all four stages (42M parameters: built once)."""
    torch.manual_seed(0)
    return InceptionV4(out_indices=(0, 1, 2, 3)).eval()


def random_projection_loss(outs: tuple[torch.Tensor, ...]) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    return sum((o * torch.randn(o.shape, generator=gen)).sum() for o in outs)


# -- shapes -------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(299, 299), (67, 45), (33, 17), (1, 1)])
def test_inception_v4_shapes_all_stages(v4_all, size):
    h, w = size
    with torch.no_grad():
        outs = v4_all(torch.randn(1, 3, h, w))
    assert v4_all.out_channels == [192, 384, 1024, 1536]
    assert v4_all.out_strides == list(STRIDES)
    assert [tuple(o.shape) for o in outs] == [
        (1, c, ceil_div(h, s), ceil_div(w, s)) for c, s in zip(v4_all.out_channels, STRIDES)]


@pytest.mark.parametrize("out_indices, expected", [
    ((3,), (3,)), ((0, 1, 2, 3), (0, 1, 2, 3)), ((1, 2, 3), (1, 2, 3)), ((2,), (2,)),
    ((-1, 1), (1, 3)), (0, (0,)), ([3, 0], (0, 3)),
])
def test_bn_inception_shapes(out_indices, expected):
    h, w = 37, 53  # odd; one input shape for all cases keeps oneDNN's kernel cache warm
    model = BNInception(out_indices=out_indices).eval()
    assert model.out_indices == expected
    assert model.out_channels == [STAGE_CHANNELS["BNInception"][i] for i in expected]
    with torch.no_grad():
        outs = model(torch.randn(2, 3, h, w))
    assert isinstance(outs, tuple)
    assert [tuple(o.shape) for o in outs] == [
        (2, STAGE_CHANNELS["BNInception"][i], ceil_div(h, STRIDES[i]), ceil_div(w, STRIDES[i]))
        for i in expected]


def test_bn_inception_reference_geometry_and_block_widths():
    # 224 -> 56/28/14/7 as in the reference (299 gives InceptionV4 75/38/19/10, see above).
    model = BNInception(out_indices=(0, 1, 2, 3)).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 224, 224))
    assert [o.shape[-1] for o in outs] == [56, 28, 14, 7]
    # Each block feeds the next one's width; 3c and 4e (stride 2) pass their input through.
    specs = list(BLOCKS.values())
    assert [s.out_channels for s in specs] == [256, 320, 576, 576, 576, 608, 608, 1056, 1024,
                                               1024]
    assert all(a.out_channels == b.in_channels for a, b in zip(specs, specs[1:]))


def test_in_channels():
    model = BNInception(in_channels=1, out_indices=(0,)).eval()
    with torch.no_grad():
        (out,) = model(torch.randn(1, 1, 40, 40))
    assert out.shape == (1, 192, 10, 10)


# -- parameter counts ---------------------------------------------------------------------
def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def with_classifier(backbone: nn.Module) -> int:
    """Backbone parameters + those of a 1000-class ``nn.Linear`` on its last channels."""
    return n_params(backbone) + n_params(nn.Linear(backbone.out_channels[-1], 1000))


def test_inception_v4_parameter_count(v4_all):
    # Published: timm `inception_v4` / Cadene pretrainedmodels `inceptionv4`, which have
    # the same layers (bias-free convs + affine BN, Linear(1536, 1000)): 42,679,816.
    assert with_classifier(v4_all) == 42_679_816


def test_bn_inception_parameter_count():
    # Published: Cadene pretrainedmodels `bninception` (Caffe port, a bias in every conv,
    # affine BN, Linear(1024, 1000)): 11,295,240. `conv_bias=True` reproduces it exactly.
    assert with_classifier(BNInception(conv_bias=True)) == 11_295_240
    # By default no conv has a bias before its BN: 10,016 fewer parameters, the sum of
    # the output channels of the 69 convolutions (BN's shift makes those biases redundant).
    default = BNInception()
    n_convs = sum(isinstance(m, nn.Conv2d) for m in default.modules())
    conv_out = sum(m.out_channels for m in default.modules() if isinstance(m, nn.Conv2d))
    assert (n_convs, conv_out) == (69, 10_016)
    assert with_classifier(default) == 11_295_240 - 10_016


# -- argument validation ------------------------------------------------------------------
@pytest.mark.parametrize("name", list(CLASSES))
@pytest.mark.parametrize("bad", [(4,), (-5,), (), (1, 1), (3, -1), (1.0,), "3", (True,), None])
def test_bad_out_indices(name, bad):
    with pytest.raises(ValueError, match=r"out_indices.*\[-4, 3\]"):
        CLASSES[name](out_indices=bad)


@pytest.mark.parametrize("name", list(CLASSES))
@pytest.mark.parametrize("bad", [4, -2, 1.0, True, None])
def test_bad_frozen_stages(name, bad):
    with pytest.raises(ValueError, match=r"frozen_stages.*\[-1, 3\]"):
        CLASSES[name](frozen_stages=bad)


# -- gradients, freezing, norm_eval -------------------------------------------------------
def bn_layers(module: nn.Module) -> list[_BatchNorm]:
    return [m for m in module.modules() if isinstance(m, _BatchNorm)]


@pytest.mark.parametrize("name, size", [("BNInception", 64), ("InceptionV4", 32)])
def test_gradient_reaches_every_parameter(name, size):
    torch.manual_seed(0)
    model = CLASSES[name](out_indices=(0, 1, 2, 3)).train()
    random_projection_loss(model(torch.randn(2, 3, size, size))).backward()
    missing = [n for n, p in model.named_parameters()
               if p.grad is None or not torch.isfinite(p.grad).all() or not p.grad.abs().sum()]
    assert not missing


def test_frozen_stages():
    torch.manual_seed(0)
    model = BNInception(out_indices=(0, 1, 2, 3), frozen_stages=1)
    model.train()  # must not unfreeze
    frozen, trainable = model.stages[:2], model.stages[2:]
    assert all(not p.requires_grad for p in frozen.parameters())
    assert all(p.requires_grad for p in trainable.parameters())
    assert all(not bn.training for bn in bn_layers(frozen))
    assert all(bn.training for bn in bn_layers(trainable))

    before = {id(bn): (bn.running_mean.clone(), bn.running_var.clone())
              for bn in bn_layers(model)}
    random_projection_loss(model(torch.randn(2, 3, 64, 64))).backward()
    for bn in bn_layers(frozen):
        assert torch.equal(bn.running_mean, before[id(bn)][0])
        assert torch.equal(bn.running_var, before[id(bn)][1])
    assert all(not torch.equal(bn.running_mean, before[id(bn)][0])
               for bn in bn_layers(trainable))
    assert all(p.grad is None for p in frozen.parameters())
    assert all(p.grad is not None for p in trainable.parameters())

    model.eval().train()  # freezing survives mode switches
    assert all(not bn.training for bn in bn_layers(frozen))


def test_frozen_stem_inception_v4():
    model = InceptionV4(frozen_stages=0).train()
    assert all(not p.requires_grad for p in model.stages[0].parameters())
    assert all(p.requires_grad for p in model.stages[1:].parameters())
    assert all(not bn.training for bn in bn_layers(model.stages[0]))


def test_norm_eval():
    model = BNInception(out_indices=(1, 3), norm_eval=True).train()
    assert model.training
    assert all(not bn.training for bn in bn_layers(model))
    assert all(p.requires_grad for p in model.parameters())
    before = [bn.running_mean.clone() for bn in bn_layers(model)]
    random_projection_loss(model(torch.randn(2, 3, 64, 64))).backward()
    assert all(torch.equal(bn.running_mean, b) for bn, b in zip(bn_layers(model), before))
    assert all(p.grad is not None for p in model.parameters())
    # without norm_eval the statistics move
    plain = BNInception(out_indices=(3,)).train()
    plain(torch.randn(2, 3, 64, 64))
    assert not torch.equal(bn_layers(plain)[0].running_mean, torch.zeros(64))


def test_norm_cfg_and_init_weights():
    model = BNInception(norm_cfg=dict(type="GN", num_groups=16, requires_grad=True))
    assert not bn_layers(model)
    assert any(isinstance(m, nn.GroupNorm) for m in model.modules())
    model.init_weights()
    gn = next(m for m in model.modules() if isinstance(m, nn.GroupNorm))
    assert torch.equal(gn.weight, torch.ones_like(gn.weight))
    with torch.no_grad():
        (out,) = model(torch.randn(1, 3, 37, 37))
    assert out.shape == (1, 1024, 2, 2)


# -- OpenMMLab integration ----------------------------------------------------------------
def test_registered_in_mmpretrain_and_mmdet():
    from mmdet.registry import MODELS as DET_MODELS
    from mmpretrain.registry import MODELS as CLS_MODELS

    for registry in (CLS_MODELS, DET_MODELS):
        assert registry.get("InceptionV4") is InceptionV4
        assert registry.get("BNInception") is BNInception


def test_mmpretrain_image_classifier_train_step():
    from mmengine.optim import OptimWrapper
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    from mmpretrain.structures import DataSample

    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope("mmpretrain"):  # not whatever an earlier test set
        model = MODELS.build(dict(
            type="ImageClassifier",
            backbone=dict(type="BNInception", out_indices=(3,)),
            neck=dict(type="GlobalAveragePooling"),
            head=dict(type="LinearClsHead", num_classes=5, in_channels=1024,
                      loss=dict(type="CrossEntropyLoss", loss_weight=1.0))))
    assert isinstance(model.backbone, BNInception)
    model.init_weights()
    model.train()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    data = dict(inputs=torch.rand(2, 3, 96, 96) * 255,
                data_samples=[DataSample().set_gt_label(1), DataSample().set_gt_label(4)])
    weight = model.backbone.stages[0].conv1.conv.weight
    before = weight.detach().clone()
    log = model.train_step(data, optim)
    assert torch.isfinite(log["loss"])
    assert not torch.equal(weight, before)  # the gradient reached the stem and SGD stepped


RETINANET_COMMON = dict(
    type="RetinaNet",
    data_preprocessor=dict(type="mmdet.DetDataPreprocessor", mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=32),
    bbox_head=dict(
        type="RetinaHead", num_classes=3, in_channels=32, stacked_convs=1, feat_channels=32,
        anchor_generator=dict(type="AnchorGenerator", octave_base_scale=4, scales_per_octave=3,
                              ratios=[0.5, 1.0, 2.0], strides=[8, 16, 32, 64, 128]),
        bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0] * 4,
                        target_stds=[1.0] * 4),
        loss_cls=dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25,
                      loss_weight=1.0),
        loss_bbox=dict(type="L1Loss", loss_weight=1.0)),
    train_cfg=dict(
        assigner=dict(type="MaxIoUAssigner", pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0,
                      ignore_iof_thr=-1),
        sampler=dict(type="PseudoSampler"), allowed_border=-1, pos_weight=-1, debug=False),
    test_cfg=dict(nms_pre=100, min_bbox_size=0, score_thr=0.05,
                  nms=dict(type="nms", iou_threshold=0.5), max_per_img=10))


def build_retinanet(backbone: dict) -> nn.Module:
    from mmdet.registry import MODELS
    from mmengine.config import ConfigDict

    channels = [STAGE_CHANNELS[backbone["type"]][i] for i in backbone["out_indices"]]
    cfg = dict(RETINANET_COMMON, backbone=backbone,
               neck=dict(type="FPN", in_channels=channels, out_channels=32, start_level=0,
                         add_extra_convs="on_input", num_outs=5))
    return MODELS.build(ConfigDict(cfg))  # heads read test_cfg.<attr>


def det_batch(size: int) -> dict:
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    samples = []
    for boxes, labels in ([[[4.0, 6.0, 40.0, 50.0]], [0]],
                          [[[10.0, 10.0, 60.0, 30.0], [30.0, 20.0, 62.0, 62.0]], [2, 1]]):
        sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                             scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(bboxes=torch.tensor(boxes),
                                           labels=torch.tensor(labels))
        samples.append(sample)
    inputs = [torch.randint(0, 256, (3, size, size), dtype=torch.uint8) for _ in samples]
    return dict(inputs=inputs, data_samples=samples)


def test_mmdet_retinanet_fpn_losses(monkeypatch):
    from mmdet.models.losses import focal_loss

    # mmcv's sigmoid_focal_loss op has no CPU kernel; on CPU mmdet's FocalLoss must take
    # its pure-PyTorch path (py_sigmoid_focal_loss). Spy on both to prove which one ran.
    calls = []
    python_impl = focal_loss.py_sigmoid_focal_loss

    def spy(*args, **kwargs):
        calls.append("python")
        return python_impl(*args, **kwargs)

    def mmcv_op(*args, **kwargs):
        raise AssertionError("mmcv sigmoid_focal_loss op called on CPU")

    monkeypatch.setattr(focal_loss, "py_sigmoid_focal_loss", spy)
    monkeypatch.setattr(focal_loss, "sigmoid_focal_loss", mmcv_op)

    torch.manual_seed(0)
    model = build_retinanet(dict(type="BNInception", out_indices=(1, 2, 3), frozen_stages=0,
                                 norm_eval=True))
    assert isinstance(model.backbone, BNInception)
    model.train()
    data = model.data_preprocessor(det_batch(64), training=True)
    feats = model.extract_feat(data["inputs"])
    assert [tuple(f.shape[-2:]) for f in feats] == [(8, 8), (4, 4), (2, 2), (1, 1), (1, 1)]
    losses = model.loss(data["inputs"], data["data_samples"])
    total = sum(sum(v) if isinstance(v, list) else v
                for k, v in losses.items() if "loss" in k)
    assert torch.isfinite(total) and total > 0
    total.backward()
    assert model.backbone.stages[3].inception_5b.branch3x3[1].conv.weight.grad is not None
    assert model.backbone.stages[0].conv1.conv.weight.grad is None  # frozen stem
    assert calls and set(calls) == {"python"}


def test_mmdet_retinanet_inception_v4_predict():
    torch.manual_seed(0)
    model = build_retinanet(dict(type="InceptionV4", out_indices=(1, 2, 3))).eval()
    data = model.data_preprocessor(det_batch(64), training=False)
    with torch.no_grad():
        feats = model.extract_feat(data["inputs"])
        results = model.predict(data["inputs"], data["data_samples"])
    assert [tuple(f.shape[1:]) for f in feats] == [
        (32, 8, 8), (32, 4, 4), (32, 2, 2), (32, 1, 1), (32, 1, 1)]
    assert len(results) == 2 and all(len(r.pred_instances) <= 10 for r in results)
