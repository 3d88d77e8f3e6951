"""Soft RoI Selection and all-level RoI pooling: shapes, gradients, exactness of the batched
pooling against per-level mmcv RoIAlign, equivalence with the literal reference
(``benchmarks/reference_srs.py``) and argument checks. CPU, small tensors (about 10 s).
"""
from __future__ import annotations

import importlib.util
import math

import cplugins_augfpn  # noqa: F401  (imports cplugins first, registers the modules)
import pytest
import torch
from cplugins_augfpn.soft_roi_extractor import AllLevelRoIExtractor, SoftRoIExtractor
from helpers import REPO, count_calls
from mmcv.ops import RoIAlign

STRIDES = [4, 8, 16, 32]
C = 8


def _load_reference():
    spec = importlib.util.spec_from_file_location(
        "reference_srs", REPO / "benchmarks" / "reference_srs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


reference = _load_reference()


def pyramid(h: int, w: int, strides=STRIDES, batch: int = 2, channels: int = C,
            requires_grad: bool = False, dtype=torch.float32) -> list[torch.Tensor]:
    """Feature maps of an h x w (padded) image: ceil(h / s) x ceil(w / s) per stride."""
    return [torch.randn(batch, channels, math.ceil(h / s), math.ceil(w / s), dtype=dtype,
                        requires_grad=requires_grad) for s in strides]


def rois_in_image(num: int, h: int, w: int, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """Random RoIs inside the image, plus RoIs touching every image edge and a tiny one."""
    rois = reference.random_rois(num, batch, h, w, seed=seed)
    edges = torch.tensor([[0, 0.0, 0.0, w, h], [1, w - 9.0, h - 7.0, w, h],
                          [0, 0.0, h - 3.0, 5.0, h], [1, 2.0, 3.0, 2.5, 3.25]])
    edges[:, 0] = edges[:, 0].clamp(max=batch - 1)
    return torch.cat([rois, edges])


def layer_cfg(sampling_ratio: int = 2, aligned: bool = True, pool_mode: str = "avg") -> dict:
    return dict(type="RoIAlign", output_size=7, sampling_ratio=sampling_ratio, aligned=aligned,
                pool_mode=pool_mode)


def per_level(feats, rois, cfg: dict, strides=STRIDES) -> list[torch.Tensor]:
    """Plain mmcv RoIAlign on each level: (K, C, 7, 7) per level."""
    args = {k: v for k, v in cfg.items() if k != "type"}
    return [RoIAlign(spatial_scale=1.0 / s, **args)(f, rois) for f, s in zip(feats, strides)]


def randomize_(module: torch.nn.Module, std: float = 0.3) -> torch.nn.Module:
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, std)
    return module


# ------------------------------------------------------------------- all-level pooling exactness
@pytest.mark.parametrize(
    "image,sampling_ratio,aligned,pool_mode",
    [((97, 131), 2, True, "avg"), ((64, 96), 0, True, "avg"), ((97, 131), 2, False, "avg"),
     ((50, 77), 2, True, "max"), ((33, 200), 0, False, "avg")],
    ids=str,
)
def test_all_level_pooling_equals_per_level_roi_align(image, sampling_ratio, aligned,
                                                      pool_mode):
    """mmcv backend, batched path (padded stack, one call for levels 1..3) == RoIAlign level
    by level.

    Equal up to float rounding: at a level's last row/column the padded path interpolates
    towards a replicated row (4 terms) where mmcv clamps (2 terms).
    """
    torch.manual_seed(0)
    h, w = image
    cfg = layer_cfg(sampling_ratio, aligned, pool_mode)
    extractor = AllLevelRoIExtractor(cfg, C, STRIDES, backend="mmcv")
    calls = count_calls(*extractor.roi_layers)
    feats = pyramid(h, w, requires_grad=True)
    rois = rois_in_image(40, h, w)
    out = extractor(feats, rois)
    assert out.shape == (rois.size(0), len(STRIDES), C, 7, 7)
    assert calls == [1, 0, 0, 0]  # the batched path: levels 1..3 in one roi_align call
    expected = per_level(feats, rois, cfg)
    torch.testing.assert_close(out[:, 0], expected[0], rtol=0, atol=0)  # its own layer
    torch.testing.assert_close(extractor(feats, rois, channels_last=True),
                               out.permute(0, 1, 3, 4, 2), rtol=0, atol=0)
    for level, exp in enumerate(expected[1:], 1):
        torch.testing.assert_close(out[:, level], exp, rtol=1e-6, atol=1e-6)
    grad = torch.randn_like(out)
    got = torch.autograd.grad(out, feats, grad)
    want = torch.autograd.grad(torch.stack(expected, 1), feats, grad)
    for g, e in zip(got, want):  # the replicate pad's backward folds the edge back
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6 * e.abs().max().item())


def test_rois_reaching_past_the_maps_take_the_per_level_path():
    """RoIs beyond the feature maps: padded values would differ, so every level is pooled by
    its own layer -- still equal to per-level RoIAlign."""
    torch.manual_seed(0)
    h, w = 64, 96
    extractor = AllLevelRoIExtractor(layer_cfg(), C, STRIDES, backend="mmcv")
    calls = count_calls(*extractor.roi_layers)
    feats = pyramid(h, w)
    rois = torch.cat([rois_in_image(10, h, w), torch.tensor([[1, 40.0, 30.0, 170.0, 150.0]])])
    out = extractor(feats, rois)
    assert calls == [1, 1, 1, 1]
    for level, exp in enumerate(per_level(feats, rois, layer_cfg())):
        torch.testing.assert_close(out[:, level], exp, rtol=0, atol=0)
    assert out[-1, -1].abs().sum() > 0  # the far RoI still pools something from level 3


@pytest.mark.parametrize("sampling_ratio", [1, 2, 3])
@pytest.mark.parametrize("aligned", [True, False])
def test_gather_backend_equals_per_level_roi_align(sampling_ratio, aligned):
    """The gather (one embedding_bag over all levels) == mmcv RoIAlign level by level, outputs
    and gradients, including RoIs reaching past the maps (mmcv's zeros) and tiny RoIs."""
    torch.manual_seed(0)
    h, w = 97, 131
    cfg = layer_cfg(sampling_ratio, aligned)
    extractor = AllLevelRoIExtractor(cfg, C, STRIDES)  # auto: the gather on CPU
    calls = count_calls(*extractor.roi_layers)
    feats = pyramid(h, w, requires_grad=True)
    far = torch.tensor([[1, 40.0, 30.0, 400.0, 300.0], [0, -30.0, -20.0, 10.0, 8.0],
                        [1, 130.0, 96.0, 131.0, 97.0]])
    rois = torch.cat([rois_in_image(40, h, w), far])
    assert extractor.uses_gather(feats)
    out = extractor(feats, rois)
    assert calls == [0, 0, 0, 0] and out.shape == (rois.size(0), len(STRIDES), C, 7, 7)
    expected = torch.stack(per_level(feats, rois, cfg), 1)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    channels_last = extractor(feats, rois, channels_last=True)  # (K, L, 7, 7, C)
    assert channels_last.is_contiguous()
    torch.testing.assert_close(channels_last, out.permute(0, 1, 3, 4, 2), rtol=0, atol=0)
    assert out[-3, 0].abs().sum() > 0 and (out[-3, 0] == 0).any()  # partly outside: zeros
    grad = torch.randn_like(out)
    got = torch.autograd.grad(out, feats, grad)
    want = torch.autograd.grad(expected, feats, grad)
    for g, e in zip(got, want):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5 * e.abs().max().item())


def test_channels_last_table_and_its_gradient():
    """The gather's table == the maps permuted to channels-last and concatenated; float64
    gradcheck of its hand-written backward."""
    from cplugins_augfpn.roi_gather import channels_last_table

    feats = pyramid(20, 28, strides=[4, 8], batch=2, channels=3, dtype=torch.float64,
                    requires_grad=True)
    expected = torch.cat([f.permute(0, 2, 3, 1).reshape(-1, 3) for f in feats])
    torch.testing.assert_close(channels_last_table(feats), expected, rtol=0, atol=0)
    assert torch.autograd.gradcheck(lambda *f: channels_last_table(f), tuple(feats))


def test_gather_gradcheck():
    """float64 gradcheck of the gather (its transposed-gather backward), both layouts."""
    from cplugins_augfpn.roi_gather import roi_align_levels

    torch.manual_seed(0)
    feats = pyramid(24, 32, strides=[4, 8], batch=2, channels=2, dtype=torch.float64,
                    requires_grad=True)
    rois = rois_in_image(5, 24, 32).to(torch.float64)
    for levels_first in (False, True):
        assert torch.autograd.gradcheck(
            lambda *f, lf=levels_first: roi_align_levels(f, rois, [0.25, 0.125], (3, 3), 2,
                                                         levels_first=lf), tuple(feats))


def test_backend_choice():
    """auto: gather for fixed-sampling avg RoIAlign, mmcv otherwise; explicit choices."""
    feats = pyramid(32, 32)
    assert AllLevelRoIExtractor(layer_cfg(2), C, STRIDES).uses_gather(feats)
    assert not AllLevelRoIExtractor(layer_cfg(0), C, STRIDES).uses_gather(feats)
    assert not AllLevelRoIExtractor(layer_cfg(2, pool_mode="max"), C, STRIDES).uses_gather(feats)
    assert not AllLevelRoIExtractor(layer_cfg(2), C, STRIDES, backend="mmcv").uses_gather(feats)
    with pytest.raises(ValueError, match=r"backend='gather' needs roi_layer=dict\(type='RoIAlign'"
                                         r", pool_mode='avg', sampling_ratio>0\)"):
        SoftRoIExtractor(layer_cfg(0), C, STRIDES, backend="gather")
    with pytest.raises(ValueError, match=r"backend must be one of \('auto', 'gather', 'mmcv'\), "
                                         r"got 'cuda'"):
        SoftRoIExtractor(layer_cfg(), C, STRIDES, backend="cuda")


# -------------------------------------------------------------------------- Soft RoI Selection
def test_single_level_equals_roi_align():
    """One level: nothing to select; exactly RoIAlign on that level, no attention parameters."""
    torch.manual_seed(0)
    srs = SoftRoIExtractor(layer_cfg(), C, [8])
    assert list(srs.parameters()) == []
    (feat,) = pyramid(97, 131, strides=[8])
    rois = rois_in_image(30, 97, 131)
    torch.testing.assert_close(srs([feat], rois), per_level([feat], rois, layer_cfg(), [8])[0],
                               rtol=0, atol=0)


def test_one_map_with_several_strides_pools_like_single_roi_extractor():
    """A one-map pyramid with four strides: mmdet's SingleRoIExtractor pools every RoI from that
    map with the first stride's RoI layer; as its drop-in, SoftRoIExtractor does the same."""
    from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor

    torch.manual_seed(0)
    srs = randomize_(SoftRoIExtractor(layer_cfg(), C, STRIDES))
    stock = SingleRoIExtractor(layer_cfg(), C, STRIDES)
    (feat,) = pyramid(97, 131, strides=[4])
    rois = rois_in_image(30, 97, 131)
    with torch.no_grad():
        torch.testing.assert_close(srs([feat], rois), stock([feat], rois), rtol=0, atol=0)
        empty = srs([feat], rois[:0])
    assert empty.shape == (0, C, 7, 7)
    with pytest.raises(ValueError, match=r"featmap_strides=\[4, 8, 16, 32\] \(4 levels\) but "
                                         r"got 2 feature maps"):
        srs([feat, feat], rois)


def test_shapes_and_gradient_flow():
    torch.manual_seed(0)
    srs = SoftRoIExtractor(layer_cfg(), C, STRIDES, attention_channels=6)
    srs.init_weights()
    assert tuple(srs.fuse_conv.weight.shape) == (6, 4 * C, 1, 1)
    assert tuple(srs.weight_conv.weight.shape) == (4, 6, 3, 3)
    feats = pyramid(97, 131, requires_grad=True)
    rois = rois_in_image(25, 97, 131)
    out = srs(feats, rois)
    assert out.shape == (rois.size(0), C, 7, 7)
    (out * torch.randn_like(out)).sum().backward()
    for name, p in srs.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in feats)


@pytest.mark.parametrize(
    "image,sampling_ratio,attention,dtype,backend",
    [((97, 131), 2, None, torch.float32, "gather"), ((97, 131), 2, None, torch.float32, "mmcv"),
     ((64, 96), 0, 5, torch.float32, "auto"), ((45, 70), 2, None, torch.float64, "gather"),
     ((45, 70), 3, 4, torch.float64, "mmcv")],
    ids=str,
)
def test_matches_literal_reference(image, sampling_ratio, attention, dtype, backend):
    """Same parameters as benchmarks/reference_srs.LiteralSRS: same output and gradients,
    with either pooling backend."""
    torch.manual_seed(0)
    h, w = image
    srs = randomize_(SoftRoIExtractor(layer_cfg(sampling_ratio), C, STRIDES,
                                      attention_channels=attention, backend=backend)).to(dtype)
    literal = reference.copy_srs_weights(
        srs, reference.LiteralSRS(C, STRIDES, sampling_ratio=sampling_ratio,
                                  attention_channels=attention)).to(dtype)
    feats = pyramid(h, w, requires_grad=True, dtype=dtype)
    rois = rois_in_image(30, h, w).to(dtype)
    grad_out = torch.randn(rois.size(0), C, 7, 7, dtype=dtype)
    outs, grads = [], []
    for module in (srs, literal):
        out = module(feats, rois)
        outs.append(out)
        params = [getattr(module, n).weight for n in ("fuse_conv", "weight_conv")]
        grads.append(torch.autograd.grad(out, [*feats, *params], grad_out))
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(outs[0], outs[1], **tol)
    for got, want in zip(*grads):
        scale = want.abs().max().item()
        torch.testing.assert_close(got, want, rtol=tol["rtol"] * 10, atol=tol["atol"] * scale)


def test_no_rois():
    torch.manual_seed(0)
    srs = SoftRoIExtractor(layer_cfg(), C, STRIDES)
    feats = pyramid(64, 64, requires_grad=True)
    out = srs(feats, torch.zeros(0, 5))
    assert out.shape == (0, C, 7, 7)
    out.sum().backward()  # the parameters stay in the graph (zero gradients)
    assert all(p.grad is not None for p in srs.parameters())


def test_roi_scale_factor():
    """``roi_scale_factor`` pools the rescaled RoIs (as mmdet's extractors do)."""
    torch.manual_seed(0)
    srs = randomize_(SoftRoIExtractor(layer_cfg(), C, STRIDES))
    feats = pyramid(97, 131)
    rois = reference.random_rois(12, 2, 97, 131)
    with torch.no_grad():
        scaled = srs(feats, rois, roi_scale_factor=0.5)
        expected = srs(feats, srs.roi_rescale(rois, 0.5))
        assert not torch.allclose(scaled, srs(feats, rois))
    torch.testing.assert_close(scaled, expected, rtol=0, atol=0)


def test_builds_from_mmdet_registry():
    from mmdet.registry import MODELS

    srs = MODELS.build(dict(type="SoftRoIExtractor", roi_layer=layer_cfg(), out_channels=C,
                            featmap_strides=STRIDES))
    pool = MODELS.build(dict(type="AllLevelRoIExtractor", roi_layer=layer_cfg(), out_channels=C,
                             featmap_strides=STRIDES))
    assert type(srs) is SoftRoIExtractor and type(pool) is AllLevelRoIExtractor


# ---------------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(out_channels=0), r"SoftRoIExtractor: out_channels must be a positive int, got 0"),
        (dict(out_channels=8.0), r"out_channels must be a positive int, got 8.0"),
        (dict(featmap_strides=[]), r"featmap_strides must be a non-empty list of positive"),
        (dict(featmap_strides=[4, -8]), r"featmap_strides must be .*got \[4, -8\]"),
        (dict(featmap_strides="4816"), r"featmap_strides must be a non-empty list"),
        (dict(attention_channels=0), r"attention_channels must be a positive int or None, got 0"),
    ],
    ids=lambda v: repr(v) if isinstance(v, dict) else None,
)
def test_invalid_arguments(kwargs, match):
    args = dict(roi_layer=layer_cfg(), out_channels=C, featmap_strides=STRIDES) | kwargs
    with pytest.raises(ValueError, match=match):
        SoftRoIExtractor(**args)


def test_invalid_inputs():
    srs = SoftRoIExtractor(layer_cfg(), C, STRIDES)
    feats = pyramid(64, 64)
    rois = rois_in_image(4, 64, 64)
    with pytest.raises(ValueError, match=r"featmap_strides=\[4, 8, 16, 32\] \(4 levels\) but "
                                         r"got 3 feature maps"):
        srs(feats[:3], rois)
    bad = [*feats[:2], torch.randn(2, C + 1, 4, 4), feats[3]]
    with pytest.raises(ValueError, match=r"feats\[2\] has shape \(2, 9, 4, 4\); expected "
                                         r"\(N, out_channels=8, H, W\)"):
        srs(bad, rois)
    with pytest.raises(ValueError, match=r"rois must be \(K, 5\), got \(8, 4\)"):
        srs(feats, rois[:, 1:])
