"""Tests of cplugins-augfpn: AugFPN shapes, gradients, FPN equivalence, literal-RFA equivalence.

Real forward/backward passes on CPU with small channel counts (one check at R50 channels).
"""
from __future__ import annotations

import importlib
import importlib.util
import math
from pathlib import Path

import pytest
import torch

import cplugins  # noqa: F401  (before mmdet: arms the torchvision import fix)

REPO = Path(__file__).resolve().parents[3]
DIST_ROOT = Path(__file__).resolve().parents[1]




def _load_reference():
    """``benchmarks/reference_rfa.py`` (plain torch, not a package) as a module."""
    spec = importlib.util.spec_from_file_location(
        "reference_rfa", REPO / "benchmarks" / "reference_rfa.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


import cplugins_augfpn  # noqa: E402,F401  (the installed plugin: importing it registers it)
from cplugins_augfpn import plugin  # noqa: E402
from cplugins_augfpn.augfpn import AugFPN, ResidualFeatureAugmentation  # noqa: E402
from mmdet.models.necks import FPN  # noqa: E402

reference = _load_reference()
LiteralRFA, copy_rfa_weights = reference.LiteralRFA, reference.copy_rfa_weights

CHANNELS = [8, 16, 24, 32]
OUT = 16


def backbone_sizes(h: int, w: int, levels: int = 4) -> list[tuple[int, int]]:
    """Feature sizes of a ResNet-like backbone (strides 4, 8, 16, 32) for an h x w image."""
    sizes = [(math.ceil(h / 4), math.ceil(w / 4))]
    for _ in range(levels - 1):
        sizes.append((math.ceil(sizes[-1][0] / 2), math.ceil(sizes[-1][1] / 2)))
    return sizes


def make_inputs(channels, sizes, batch: int = 2, requires_grad: bool = False):
    return [
        torch.randn(batch, c, h, w, requires_grad=requires_grad)
        for c, (h, w) in zip(channels, sizes)
    ]


def randomize_(module: torch.nn.Module, std: float = 0.2) -> torch.nn.Module:
    """Non-trivial weights and biases (biases nonzero, attention weights far from 0.5)."""
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, std)
    return module


def expected_shapes(sizes, start: int, used: int, num_outs: int):
    shapes = [sizes[start + i] for i in range(used)]
    while len(shapes) < num_outs:  # 1x1 max-pool / 3x3 conv, stride 2, padding 1: ceil(x / 2)
        h, w = shapes[-1]
        shapes.append((math.ceil(h / 2), math.ceil(w / 2)))
    return [(2, OUT, h, w) for h, w in shapes]


# ------------------------------------------------------------------------------------- shapes
NECK_VARIANTS = {
    "maxpool": dict(num_outs=5),
    "on_input": dict(num_outs=5, add_extra_convs="on_input"),
    "on_lateral": dict(num_outs=5, add_extra_convs="on_lateral"),
    "on_output_relu": dict(num_outs=6, add_extra_convs="on_output", relu_before_extra_convs=True),
    "true_start1": dict(num_outs=5, start_level=1, add_extra_convs=True),
    "end_level2": dict(num_outs=3, end_level=2),
    "start1_end2": dict(num_outs=2, start_level=1, end_level=2),
}


IMAGES = [(97, 131), (128, 160), (33, 65)]  # odd / even / small-and-odd image sizes


@pytest.mark.parametrize(
    "variant,image",
    [(v, IMAGES[i % len(IMAGES)]) for i, v in enumerate(NECK_VARIANTS)] + [("maxpool", (1, 1))],
    ids=str,
)
def test_output_shapes(variant, image):
    torch.manual_seed(0)
    kwargs = NECK_VARIANTS[variant]
    neck = AugFPN(CHANNELS, OUT, **kwargs)
    sizes = backbone_sizes(*image)
    start = kwargs.get("start_level", 0)
    used = (kwargs.get("end_level", 3) + 1) - start
    with torch.no_grad():
        outs = neck(make_inputs(CHANNELS, sizes))
    assert isinstance(outs, tuple)
    assert [tuple(o.shape) for o in outs] == expected_shapes(sizes, start, used, kwargs["num_outs"])
    assert all(torch.isfinite(o).all() for o in outs)


def test_output_shapes_r50_channels():
    """Real Faster R-CNN R50 channel counts (small image to stay fast)."""
    torch.manual_seed(0)
    channels = [256, 512, 1024, 2048]
    neck = AugFPN(channels, 256, 5)
    sizes = backbone_sizes(97, 131)
    with torch.no_grad():
        outs = neck(make_inputs(channels, sizes, batch=1))
    assert [tuple(o.shape) for o in outs] == [
        (1, 256, 25, 33), (1, 256, 13, 17), (1, 256, 7, 9), (1, 256, 4, 5), (1, 256, 2, 3)
    ]
    assert tuple(neck.rfa.pool_convs[0].weight.shape) == (256, 2048, 1, 1)
    assert tuple(neck.rfa.fuse_conv.weight.shape) == (256, 768, 1, 1)
    assert tuple(neck.rfa.weight_conv.weight.shape) == (3, 256, 3, 3)


def test_forward_with_laterals():
    torch.manual_seed(0)
    neck = randomize_(AugFPN(CHANNELS, OUT, 5, start_level=1, add_extra_convs="on_lateral"))
    sizes = backbone_sizes(97, 131)
    inputs = make_inputs(CHANNELS, sizes)
    with torch.no_grad():
        outs = neck(inputs)
        outs2, laterals = neck.forward_with_laterals(inputs)
        assert len(outs2) == len(outs) == 5
        for a, b in zip(outs, outs2):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        assert [tuple(t.shape) for t in laterals] == [(2, OUT, *s) for s in sizes[1:]]
        # pre-fusion, as the authors' raw_laternals: every lateral conv's output, the top one
        # before the RFA residual is added, no top-down sum
        for i, conv in enumerate(neck.lateral_convs):
            torch.testing.assert_close(laterals[i], conv(inputs[i + 1]), rtol=0, atol=0)


def test_rfa_reads_end_level():
    """With end_level set, RFA reads (and is sized for) that level, not inputs[-1]."""
    neck = AugFPN(CHANNELS, OUT, 3, end_level=2)
    assert neck.rfa.in_channels == CHANNELS[2]
    sizes = backbone_sizes(64, 96)
    inputs = make_inputs(CHANNELS, sizes)
    with torch.no_grad():
        outs = neck(inputs)
        # the top output: fpn_conv of that level's lateral plus the residual of that level
        torch.testing.assert_close(
            outs[-1], neck.fpn_convs[-1](neck.lateral_convs[-1](inputs[2]) + neck.rfa(inputs[2]))
        )


# ---------------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("extra", [False, "on_input", "on_output"])
def test_gradients_reach_every_parameter(extra):
    torch.manual_seed(0)
    neck = randomize_(AugFPN(CHANNELS, OUT, 5, add_extra_convs=extra))
    inputs = make_inputs(CHANNELS, backbone_sizes(97, 131), requires_grad=True)
    outs = neck(inputs)
    sum((o * torch.randn_like(o)).sum() for o in outs).backward()
    for name, p in neck.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name
    assert all(x.grad is not None and x.grad.abs().sum() > 0 for x in inputs)


# ------------------------------------------------------------------------ equivalence to FPN
FPN_EQUIVALENCE = {
    "default": dict(num_outs=5),
    "on_input": dict(num_outs=5, add_extra_convs="on_input", relu_before_extra_convs=True),
    "start1_on_lateral": dict(num_outs=5, start_level=1, add_extra_convs="on_lateral"),
    "end_level2": dict(num_outs=3, end_level=2),
    "gn_relu": dict(num_outs=5, norm_cfg=dict(type="GN", num_groups=4), act_cfg=dict(type="ReLU")),
    "scale_factor": dict(num_outs=5, upsample_cfg=dict(scale_factor=2, mode="nearest")),
}


@pytest.mark.parametrize("variant", list(FPN_EQUIVALENCE))
def test_zeroed_rfa_equals_fpn(variant):
    """FPN state_dict loads into AugFPN; with the residual zeroed, outputs equal FPN's."""
    torch.manual_seed(0)
    kwargs = FPN_EQUIVALENCE[variant]
    fpn = randomize_(FPN(list(CHANNELS), OUT, **kwargs)).eval()
    neck = randomize_(AugFPN(CHANNELS, OUT, **kwargs)).eval()
    missing, unexpected = neck.load_state_dict(fpn.state_dict(), strict=False)
    assert unexpected == []
    assert missing and all(k.startswith("rfa.") for k in missing)
    sizes = backbone_sizes(128, 192) if "scale_factor" in variant else backbone_sizes(97, 131)
    inputs = make_inputs(CHANNELS, sizes)
    with torch.no_grad():
        expected = fpn(inputs)
        augmented = neck(inputs)
        assert not torch.allclose(augmented[0], expected[0])  # the branch does something
        neck.rfa.zero_residual_()
        assert neck.rfa(inputs[neck.backbone_end_level - 1]).abs().max() == 0
        actual = neck(inputs)
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e, rtol=0, atol=0)


def test_zeroed_rfa_still_trains():
    """The zeroed residual is a zero-init branch: its pool convs still get gradients."""
    torch.manual_seed(0)
    neck = randomize_(AugFPN(CHANNELS, OUT, 5))
    neck.rfa.zero_residual_()
    outs = neck(make_inputs(CHANNELS, backbone_sizes(64, 96)))
    sum((o * torch.randn_like(o)).sum() for o in outs).backward()
    assert all(conv.weight.grad.abs().sum() > 0 for conv in neck.rfa.pool_convs)


def test_init_weights_xavier_everywhere():
    """The default init_cfg (FPN's Xavier uniform) also initialises the RFA convs."""
    torch.manual_seed(0)
    neck = randomize_(AugFPN(CHANNELS, OUT, 5), std=5.0)
    neck.init_weights()
    convs = {n: m for n, m in neck.named_modules() if isinstance(m, torch.nn.Conv2d)}
    assert {"rfa.pool_convs.0", "rfa.fuse_conv", "rfa.weight_conv"} <= set(convs)
    for name, conv in convs.items():
        w = conv.weight
        fan_in, fan_out = w.shape[1] * w[0, 0].numel(), w.shape[0] * w[0, 0].numel()
        assert w.abs().max() <= math.sqrt(6.0 / (fan_in + fan_out)), name
        assert conv.bias.abs().max() == 0, name


# -------------------------------------------------------------- equivalence to the literal RFA
@pytest.mark.parametrize(
    "size,ratios,dtype",
    [
        ((25, 38), (0.1, 0.2, 0.3), torch.float32),  # R50 C5 of an 800x1216 image
        ((97, 131), (0.1, 0.2, 0.3), torch.float32),  # odd, image-level size
        ((10, 30), (0.1, 0.2, 0.3), torch.float32),  # int(30 * 0.1) == 3 edge
        ((7, 9), (0.1, 0.2, 0.3), torch.float32),  # every ratio pools to 1 row
        ((1, 1), (0.1, 0.2, 0.3), torch.float32),
        ((3, 50), (0.5, 1.0), torch.float32),  # ratio 1.0: identity pool / upsample
        ((13, 17), (0.25,), torch.float64),  # one ratio; float64: exact up to rounding
    ],
    ids=str,
)
def test_rfa_matches_literal(size, ratios, dtype):
    torch.manual_seed(0)
    rfa = randomize_(ResidualFeatureAugmentation(12, 8, ratios), std=0.3).to(dtype)
    literal = copy_rfa_weights(rfa, LiteralRFA(12, 8, ratios)).to(dtype)
    x = torch.randn(2, 12, *size, dtype=dtype, requires_grad=True)
    grad_out = torch.randn(2, 8, *size, dtype=dtype)
    outs, grads = [], []
    for module in (rfa, literal):
        out = module(x)
        outs.append(out)
        params = [p for _, p in sorted(module.named_parameters())]
        grads.append(torch.autograd.grad(out, [x, *params], grad_out))
    scale = outs[1].abs().max().item()
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-4, atol=1e-5 * scale)
    for g_vec, g_lit in zip(*grads):
        torch.testing.assert_close(g_vec, g_lit, rtol=1e-4, atol=1e-5 * g_lit.abs().max().item())


def test_augfpn_rfa_matches_literal_r50_top():
    """The branch of an AugFPN, copied into LiteralRFA, at R50 C5 channels (2048 -> 256).

    Forward in float32. Gradients in float64: with 2*256*950 ReLU inputs, float32 rounding
    (which differs between the two implementations, and for torch's own ops between thread
    counts) can put an input within 1e-7 of 0 on the other side of the kink, a legitimate
    local gradient difference of ~1e-3 relative that says nothing about the formulas.
    """
    torch.manual_seed(0)
    neck = AugFPN([256, 512, 1024, 2048], 256, 5)
    neck.init_weights()
    literal = copy_rfa_weights(neck, LiteralRFA(2048, 256))
    x = torch.randn(1, 2048, 25, 38)
    with torch.no_grad():
        out, lit = neck.rfa(x), literal(x)
    torch.testing.assert_close(out, lit, rtol=1e-4, atol=1e-5 * lit.abs().max().item())

    rfa64, literal64 = neck.rfa.double(), literal.double()
    x64 = x.double().requires_grad_()
    g = torch.randn(1, 256, 25, 38, dtype=torch.float64)
    grads = []
    for module in (rfa64, literal64):
        params = [p for _, p in sorted(module.named_parameters())]
        grads.append(torch.autograd.grad(module(x64), [x64, *params], g))
    for g_vec, g_lit in zip(*grads):
        torch.testing.assert_close(g_vec, g_lit, rtol=1e-7, atol=1e-9 * g_lit.abs().max().item())


def test_operator_cache_is_bounded():
    rfa = ResidualFeatureAugmentation(4, 4)
    for h in range(1, rfa.cache_size + 6):
        rfa(torch.randn(1, 4, h, 5))
    assert len(rfa._operators) == rfa.cache_size


# --------------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(in_channels=[]), r"in_channels must be a non-empty list of positive ints"),
        (dict(in_channels=[8, 0, 24, 32]), r"in_channels must be .* positive ints"),
        (dict(in_channels=[8, 16.0, 24, 32]), r"in_channels must be .* positive ints"),
        (dict(in_channels=[8, True, 24, 32]), r"in_channels must be .* positive ints"),
        (dict(in_channels=32), r"in_channels must be a non-empty list"),
        (dict(out_channels=0), r"out_channels must be a positive int"),
        (dict(num_outs=3), r"num_outs must be an int >= 4"),
        (dict(num_outs=2, start_level=1), r"num_outs must be an int >= 3"),
        (dict(num_outs=4, end_level=2), r"num_outs must be an int == 3"),
        (dict(start_level=4), r"start_level must be an int in \[0, len\(in_channels\)=4\)"),
        (dict(end_level=5), r"end_level must be -1 or an int in \[start_level=0"),
        (dict(add_extra_convs="on_top"), r"add_extra_convs must be a bool or one of"),
        (dict(pool_ratios=()), r"pool_ratios must be a non-empty sequence of numbers in \(0, 1\]"),
        (dict(pool_ratios=(0.1, 0.0)), r"pool_ratios must be .* in \(0, 1\]"),
        (dict(pool_ratios=(0.1, 1.5)), r"pool_ratios must be .* in \(0, 1\]"),
        (dict(pool_ratios=0.1), r"pool_ratios must be a non-empty sequence"),
        (dict(pool_ratios=("0.1",)), r"pool_ratios must be a non-empty sequence of numbers"),
    ],
    ids=lambda v: repr(v) if isinstance(v, dict) else None,
)
def test_invalid_arguments(kwargs, match):
    args = dict(in_channels=CHANNELS, out_channels=OUT, num_outs=5) | kwargs
    with pytest.raises(ValueError, match=match):
        AugFPN(**args)


def test_wrong_number_of_inputs():
    neck = AugFPN(CHANNELS, OUT, 5)
    inputs = make_inputs(CHANNELS, backbone_sizes(64, 64))[1:]
    with pytest.raises(ValueError, match=r"len\(in_channels\)=4\), got 3"):
        neck(inputs)


# ---------------------------------------------------------------------------------- registry
def test_builds_from_mmdet_registry():
    """``type='AugFPN'`` builds from mmdet's MODELS, registered by importing the plugin."""
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope

    (spec,) = [s for s in plugin.cplugins_modules() if s.name == "AugFPN"]
    assert spec.target == "cplugins_augfpn.augfpn:AugFPN"
    with DefaultScope.overwrite_default_scope("mmdet"):  # other tests may leave another scope
        neck = MODELS.build(dict(type="AugFPN", in_channels=CHANNELS, out_channels=OUT,
                                 num_outs=5, pool_ratios=[0.2, 0.4]))
    assert type(neck) is AugFPN
    assert neck.rfa.pool_ratios == (0.2, 0.4)
