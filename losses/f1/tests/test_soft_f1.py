"""Tests of cplugins-f1loss: SoftF1Loss vs a plain reference, gradients, mmpretrain/mmdet use."""
from __future__ import annotations

import importlib
import importlib.util
import math

import cplugins_f1loss  # noqa: E402,F401  (the installed plugin: importing it registers it)
import pytest
import torch
from cplugins_f1loss import plugin  # noqa: E402
from cplugins_f1loss.soft_f1 import SoftF1Loss, soft_f1_loss  # noqa: E402


@pytest.fixture(scope="module")
def registered() -> None:
    """SoftF1Loss in the mmpretrain and mmdet MODELS registries (registered by cplugins)."""
    from cplugins import registries

    for spec in plugin.cplugins_modules():
        module = importlib.import_module(spec.module)
        cls = getattr(module, spec.target.partition(":")[2])
        for ref in spec.registries:
            assert registries.resolve(ref).get(spec.name) is cls, (spec.name, str(ref))


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """Tiny tensors: one intra-op thread is much faster than two on a loaded 2-core box."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- reference ---------------------------------------------------------------------------
def reference_per_class(probs: list[list[float]], targets: list[list[float]],
                        weights: list[float] | None = None, eps: float = 1e-6,
                        avg_factor: float | None = None) -> list[float]:
    """1 - F1 per class, with explicit loops and python floats."""
    n, c = len(probs), len(probs[0])
    weights = [1.0] * n if weights is None else weights
    s = avg_factor if avg_factor is not None else max(sum(1 for w in weights if w > 0), 1)
    out = []
    for k in range(c):
        tp = fp = fn = 0.0
        for i in range(n):
            p, y, w = probs[i][k], targets[i][k], weights[i]
            tp += w * p * y
            fp += w * p * (1 - y)
            fn += w * (1 - p) * y
        tp, fp, fn = tp / s, fp / s, fn / s
        out.append(1 - 2 * tp / (2 * tp + fp + fn + eps))
    return out


def py_sigmoid(row: list[float]) -> list[float]:
    return [1 / (1 + math.exp(-v)) for v in row]


def py_softmax(row: list[float]) -> list[float]:
    m = max(row)
    e = [math.exp(v - m) for v in row]
    return [v / sum(e) for v in e]


def one_hot(labels: list[int], c: int) -> list[list[float]]:
    return [[1.0 if k == y else 0.0 for k in range(c)] for y in labels]


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def _multilabel(gen: torch.Generator, n: int = 12, c: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    logits = torch.randn(n, c, generator=gen, dtype=torch.float64) * 2
    target = (torch.rand(n, c, generator=gen) < 0.4).double()
    target[:, 1] = 0  # an all-negative class
    target[:, 3] = 1  # an all-positive class
    return logits, target


# --- values ------------------------------------------------------------------------------
def test_sigmoid_multilabel_matches_reference(gen: torch.Generator) -> None:
    logits, target = _multilabel(gen)
    ref = reference_per_class([py_sigmoid(r) for r in logits.tolist()], target.tolist())
    per_class = SoftF1Loss(activation="sigmoid", reduction="none")(logits, target)
    assert per_class.shape == (6,)
    torch.testing.assert_close(per_class, torch.tensor(ref, dtype=torch.float64))
    assert per_class[1].item() == pytest.approx(1.0)  # no positives: TP = 0, F1 = 0
    mean = SoftF1Loss(activation="sigmoid")(logits, target)
    assert mean.item() == pytest.approx(sum(ref) / len(ref), rel=1e-12)
    total = SoftF1Loss(activation="sigmoid", reduction="sum")(logits, target)
    assert total.item() == pytest.approx(sum(ref), rel=1e-12)


def test_softmax_index_targets_match_reference(gen: torch.Generator) -> None:
    logits = torch.randn(10, 4, generator=gen, dtype=torch.float64)
    labels = torch.tensor([0, 2, 2, 0, 2, 0, 0, 2, 2, 0])  # classes 1 and 3 never occur
    ref = reference_per_class([py_softmax(r) for r in logits.tolist()],
                              one_hot(labels.tolist(), 4))
    out = SoftF1Loss(activation="softmax", reduction="none")(logits, labels)
    torch.testing.assert_close(out, torch.tensor(ref, dtype=torch.float64))
    # index and one-hot targets are the same thing
    dense = torch.nn.functional.one_hot(labels, 4).double()
    torch.testing.assert_close(SoftF1Loss()(logits, dense), SoftF1Loss()(logits, labels))


def test_activation_none_takes_probabilities(gen: torch.Generator) -> None:
    logits, target = _multilabel(gen)
    probs = torch.rand(12, 6, generator=gen, dtype=torch.float64)
    ref = reference_per_class(probs.tolist(), target.tolist())
    out = SoftF1Loss(activation="none", average="none")(probs, target)
    torch.testing.assert_close(out, torch.tensor(ref, dtype=torch.float64))
    # sigmoid / softmax are exactly 'none' applied to the activated scores
    for act, fn in (("sigmoid", logits.sigmoid()), ("softmax", logits.softmax(1))):
        torch.testing.assert_close(SoftF1Loss(activation=act)(logits, target),
                                   SoftF1Loss(activation="none")(fn, target))


def test_sigmoid_and_softmax_differ(gen: torch.Generator) -> None:
    logits = torch.randn(8, 5, generator=gen)
    labels = torch.randint(0, 5, (8,), generator=gen)
    sig = SoftF1Loss(activation="sigmoid")(logits, labels)
    soft = SoftF1Loss(activation="softmax")(logits, labels)
    assert not torch.allclose(sig, soft)
    assert SoftF1Loss(use_sigmoid=True).activation == "sigmoid"
    assert SoftF1Loss(use_sigmoid=True).use_sigmoid and not SoftF1Loss().use_sigmoid


def test_perfect_and_empty_predictions() -> None:
    target = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    loss = SoftF1Loss(activation="none", reduction="none", eps=1e-12)(target.clone(), target)
    torch.testing.assert_close(loss, torch.zeros(2))
    zero = SoftF1Loss(activation="none", reduction="none")(torch.zeros(3, 2), target)
    torch.testing.assert_close(zero, torch.ones(2))


# --- gradients ---------------------------------------------------------------------------
@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
def test_gradcheck(activation: str, gen: torch.Generator) -> None:
    logits, target = _multilabel(gen, n=6, c=4)
    logits.requires_grad_(True)
    weight = torch.rand(6, generator=gen, dtype=torch.float64)

    def fn(x: torch.Tensor) -> torch.Tensor:
        return soft_f1_loss(x, target, weight, activation=activation, class_weight=[1, 2, 0.5, 1])

    assert torch.autograd.gradcheck(fn, (logits,))
    labels = torch.tensor([0, 3, 3, 1, 4, 0])  # 4 == C: no class
    assert torch.autograd.gradcheck(
        lambda x: soft_f1_loss(x, labels, activation=activation, reduction="sum"), (logits,))


# --- ignore_index, weights, avg_factor, reduction -------------------------------------------
def test_ignore_index_excludes_samples(gen: torch.Generator) -> None:
    logits = torch.randn(9, 3, generator=gen, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, -100, 1, 0, -100, 2, 2])
    keep = labels != -100
    loss = SoftF1Loss(reduction="none")
    torch.testing.assert_close(loss(logits, labels), loss(logits[keep], labels[keep]))
    labels_ok = torch.where(keep, labels, torch.zeros_like(labels))
    custom = SoftF1Loss(reduction="none", ignore_index=2)
    keep2 = labels_ok != 2
    torch.testing.assert_close(custom(logits, labels_ok), custom(logits[keep2], labels_ok[keep2]))
    # element-wise ignore in (N, C) targets == zero element weight
    target = torch.nn.functional.one_hot(labels_ok, 3).double()
    target[0, 1] = -100
    weight = torch.ones(9, 3, dtype=torch.float64)
    weight[0, 1] = 0
    clean = target.clamp(min=0)
    torch.testing.assert_close(loss(logits, target), loss(logits, clean, weight))


def test_sample_weights(gen: torch.Generator) -> None:
    logits = torch.randn(7, 3, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 3, (7,), generator=gen)
    weight = torch.tensor([1.0, 0.0, 2.0, 1.0, 0.5, 0.0, 1.0], dtype=torch.float64)
    ref = reference_per_class([py_softmax(r) for r in logits.tolist()],
                              one_hot(labels.tolist(), 3), weight.tolist())
    out = SoftF1Loss(reduction="none")(logits, labels, weight)
    torch.testing.assert_close(out, torch.tensor(ref, dtype=torch.float64))


def test_avg_factor_scales_counts_only(gen: torch.Generator) -> None:
    logits, target = _multilabel(gen)
    loss = SoftF1Loss(activation="sigmoid", reduction="none", eps=0.5)
    probs = [py_sigmoid(r) for r in logits.tolist()]
    for factor in (1.0, 7.0, 40.0):
        ref = reference_per_class(probs, target.tolist(), eps=0.5, avg_factor=factor)
        torch.testing.assert_close(loss(logits, target, avg_factor=factor),
                                   torch.tensor(ref, dtype=torch.float64))
    # default = number of samples with nonzero weight, which is what mmpretrain/mmdet pass
    torch.testing.assert_close(loss(logits, target), loss(logits, target, avg_factor=12))
    w = torch.ones(12, dtype=torch.float64)
    w[:5] = 0
    torch.testing.assert_close(loss(logits, target, w), loss(logits, target, w, avg_factor=7))
    # with a small eps the loss hardly depends on avg_factor (F1 is scale invariant)
    small = SoftF1Loss(activation="sigmoid")
    assert small(logits, target, avg_factor=1).item() == pytest.approx(
        small(logits, target, avg_factor=100).item(), abs=1e-4)
    # a tensor avg_factor (as mmdet sometimes passes) works too; 'sum' accepts one
    small(logits, target, avg_factor=torch.tensor(3.0), reduction_override="sum")


def test_reduction_and_average_semantics(gen: torch.Generator) -> None:
    logits, target = _multilabel(gen)
    per_class = SoftF1Loss(activation="sigmoid", reduction="none")(logits, target)
    base = SoftF1Loss(activation="sigmoid", loss_weight=2.0)
    torch.testing.assert_close(base(logits, target), 2 * per_class.mean())
    torch.testing.assert_close(base(logits, target, reduction_override="sum"),
                               2 * per_class.sum())
    torch.testing.assert_close(base(logits, target, reduction_override="none"), 2 * per_class)
    per = SoftF1Loss(activation="sigmoid", average="none")
    torch.testing.assert_close(per(logits, target), per_class)
    torch.testing.assert_close(per(logits, target, reduction_override="sum"), per_class)
    cw = [1.0, 0.0, 2.0, 1.0, 1.0, 3.0]
    weighted = SoftF1Loss(activation="sigmoid", class_weight=cw)(logits, target)
    torch.testing.assert_close(weighted, (per_class * torch.tensor(cw).double()).mean())


def test_no_class_label_is_an_all_negative_row(gen: torch.Generator) -> None:
    logits = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    labels = torch.tensor([0, 3, 1, 3, 2, 0])  # 3 == C: background without a channel
    dense = torch.zeros(6, 3, dtype=torch.float64)
    for i, y in enumerate(labels.tolist()):
        if y < 3:
            dense[i, y] = 1
    loss = SoftF1Loss(activation="sigmoid", reduction="none")
    torch.testing.assert_close(loss(logits, labels), loss(logits, dense))


# --- errors ------------------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(reduction="avg"), r"reduction must be one of 'none', 'mean', 'sum'; got 'avg'"),
    (dict(average="micro"), r"average must be one of 'macro', 'none'; got 'micro'"),
    (dict(activation="relu"), r"activation must be one of 'sigmoid', 'softmax', 'none'"),
    (dict(loss_weight=-1.0), r"loss_weight must be a finite number >= 0"),
    (dict(eps=0.0), r"eps must be > 0"),
    (dict(class_weight=[1.0, -2.0]), r"class_weight must be >= 0"),
    (dict(activation="softmax", use_sigmoid=True), r"use_sigmoid=True contradicts"),
])
def test_bad_construction(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SoftF1Loss(**kwargs)


def test_bad_inputs() -> None:
    loss = SoftF1Loss()
    logits = torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"reduction_override must be one of"):
        loss(logits, torch.tensor([0, 1, 2, 0]), reduction_override="max")
    with pytest.raises(ValueError, match=r"must lie in \[0, 3\].*got \[5\]"):
        loss(logits, torch.tensor([0, 1, 5, 0]))
    with pytest.raises(ValueError, match=r"must lie in \[0, 3\]"):
        loss(logits, torch.tensor([0, -1, 2, 0]))
    with pytest.raises(ValueError, match=r"must be an integer tensor"):
        loss(logits, torch.tensor([0.0, 1.0, 2.0, 0.0]))
    with pytest.raises(ValueError, match=r"target has 3 labels for 4 predictions"):
        loss(logits, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"shape of pred \(4, 3\), got \(4, 2\)"):
        loss(logits, torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"pred must be \(N, C\) scores"):
        loss(torch.randn(4), torch.tensor([0, 1, 2, 0]))
    with pytest.raises(ValueError, match=r"weight must be \(N,\) or \(N, C\)"):
        loss(logits, torch.tensor([0, 1, 2, 0]), torch.ones(3))
    with pytest.raises(ValueError, match=r"avg_factor must be > 0"):
        loss(logits, torch.tensor([0, 1, 2, 0]), avg_factor=0)
    with pytest.raises(ValueError, match=r"class_weight must have one weight per class \(3\)"):
        SoftF1Loss(class_weight=[1.0, 2.0])(logits, torch.tensor([0, 1, 2, 0]))


# --- in mmpretrain and mmdet ----------------------------------------------------------------
def test_mmpretrain_linear_cls_head_train_step(registered: None) -> None:
    from mmengine.optim import OptimWrapper
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    from mmpretrain.structures import DataSample

    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope("mmpretrain"):
        model = MODELS.build(dict(
            type="ImageClassifier",
            backbone=dict(type="ResNet", depth=18, stem_channels=16, base_channels=16,
                          out_indices=(3, )),
            neck=dict(type="GlobalAveragePooling"),
            head=dict(type="LinearClsHead", num_classes=4, in_channels=128,
                      loss=dict(type="SoftF1Loss", activation="softmax"))))
    assert isinstance(model.head.loss_module, SoftF1Loss)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    data = dict(inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8) for _ in range(2)],
                data_samples=[DataSample().set_gt_label(1), DataSample().set_gt_label(3)])
    before = model.head.fc.weight.detach().clone()
    log = model.train_step(data, optim)
    assert torch.isfinite(log["loss"]) and 0 < log["loss"].item() <= 1
    assert not torch.equal(before, model.head.fc.weight)
    # the value is SoftF1Loss of the head's scores (avg_factor=N, as ClsHead passes)
    model.eval()
    with torch.no_grad():
        batch = model.data_preprocessor(data, training=False)
        feats = model.extract_feat(batch["inputs"])
        losses = model.head.loss(feats, data["data_samples"])
        expected = soft_f1_loss(model.head(feats), torch.tensor([1, 3]))
    torch.testing.assert_close(losses["loss"], expected)


def test_mmdet_bbox_head_loss_cls(registered: None) -> None:
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope

    torch.manual_seed(0)
    num_classes, rois = 3, 16
    with DefaultScope.overwrite_default_scope("mmdet"):
        head = MODELS.build(dict(
            type="Shared2FCBBoxHead", in_channels=8, fc_out_channels=16, roi_feat_size=7,
            num_classes=num_classes, loss_cls=dict(type="SoftF1Loss", loss_weight=1.0),
            loss_bbox=dict(type="L1Loss", loss_weight=1.0)))
    assert isinstance(head.loss_cls, SoftF1Loss)
    cls_score, bbox_pred = head(torch.randn(rois, 8, 7, 7))
    assert cls_score.shape == (rois, num_classes + 1)  # + background
    labels = torch.tensor([0, 1, 2, 3] * 4)  # 3 == num_classes: background
    label_weights = torch.ones(rois)
    label_weights[-2:] = 0  # e.g. ignored proposals
    boxes = torch.rand(rois, 4) * 32
    rois_t = torch.cat([torch.zeros(rois, 1), boxes[:, :2], boxes[:, :2] + 16], dim=1)
    losses = head.loss(cls_score, bbox_pred, rois_t, labels, label_weights,
                       torch.randn(rois, 4), torch.ones(rois, 4))
    assert set(losses) == {"loss_cls", "acc", "loss_bbox"}
    keep = label_weights > 0
    expected = soft_f1_loss(cls_score[keep], labels[keep])  # background = last class
    torch.testing.assert_close(losses["loss_cls"], expected)
    (losses["loss_cls"] + losses["loss_bbox"]).backward()
    assert head.fc_cls.weight.grad is not None and head.fc_cls.weight.grad.abs().sum() > 0
    per_class = head.loss(cls_score.detach(), None, rois_t, labels, label_weights, None, None,
                          reduction_override="none")["loss_cls"]
    assert per_class.shape == (num_classes + 1, )
