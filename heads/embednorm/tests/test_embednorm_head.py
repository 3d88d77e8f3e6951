"""Tests of cplugins-embednorm: EmbedNormClsHead and EmbedNormClassifier in mmpretrain."""
from __future__ import annotations

import importlib
import importlib.util
import math

import cplugins_embednorm  # noqa: E402,F401  (the installed plugin: importing it registers it)
import pytest
import torch
import torch.nn.functional as F
from cplugins_embednorm import plugin  # noqa: E402
from cplugins_embednorm.classifier import EmbedNormClassifier  # noqa: E402
from cplugins_embednorm.embednorm_head import EmbedNormClsHead  # noqa: E402
from mmengine.registry import DefaultScope  # noqa: E402
from mmpretrain.registry import MODELS  # noqa: E402
from mmpretrain.structures import DataSample  # noqa: E402

NUM_CLASSES, IN_CHANNELS, EMBED_DIM = 5, 16, 8


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """Tiny tensors: one intra-op thread is much faster than two on a loaded 2-core box."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def registered() -> None:
    """The plugin's classes in mmpretrain's MODELS (registered by cplugins)."""
    from cplugins import registries

    for spec in plugin.cplugins_modules():
        module = importlib.import_module(spec.module)
        cls = getattr(module, spec.target.partition(":")[2])
        for ref in spec.registries:
            assert registries.resolve(ref).get(spec.name) is cls, (spec.name, str(ref))


def make_head(**kwargs) -> EmbedNormClsHead:
    torch.manual_seed(0)
    cfg = dict(num_classes=NUM_CLASSES, in_channels=IN_CHANNELS, embed_dim=EMBED_DIM)
    cfg.update(kwargs)
    return EmbedNormClsHead(**cfg)


def feats(n: int = 4, seed: int = 1) -> tuple[torch.Tensor]:
    return (torch.randn(n, IN_CHANNELS, generator=torch.Generator().manual_seed(seed)) * 3, )


def samples(labels: list) -> list[DataSample]:
    return [DataSample().set_gt_label(label) for label in labels]


def build_classifier(classifier: str = "ImageClassifier", **head) -> torch.nn.Module:
    torch.manual_seed(0)
    head_cfg = dict(type="EmbedNormClsHead", num_classes=NUM_CLASSES, in_channels=128,
                    embed_dim=EMBED_DIM)
    head_cfg.update(head)
    with DefaultScope.overwrite_default_scope("mmpretrain"):
        return MODELS.build(dict(
            type=classifier,
            backbone=dict(type="ResNet", depth=18, stem_channels=16, base_channels=16,
                          out_indices=(3, )),
            neck=dict(type="GlobalAveragePooling"),
            head=head_cfg))


# --- shapes, normalization, bounds -----------------------------------------------------------
def test_output_shapes() -> None:
    head = make_head()
    assert head(feats()).shape == (4, NUM_CLASSES)
    assert head.embed(feats()).shape == (4, EMBED_DIM)
    assert head.pre_logits(feats()).shape == (4, EMBED_DIM)
    spatial = (torch.randn(2, 7), torch.randn(3, IN_CHANNELS, 5, 5))  # last item is used
    assert head(spatial).shape == (3, NUM_CLASSES)
    torch.testing.assert_close(head(spatial[-1:]), head((spatial[1].mean(dim=(2, 3)), )))


@pytest.mark.parametrize("with_bn", [False, True])
def test_embeddings_are_unit_norm(with_bn: bool) -> None:
    head = make_head(with_bn=with_bn)
    emb = head.embed(feats(n=6))
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(6))
    assert isinstance(head.bn, torch.nn.BatchNorm1d) == with_bn


def test_cosine_logits_bounded_by_scale() -> None:
    head = make_head(scale=7.5)
    x = (torch.randn(32, IN_CHANNELS) * 100, )
    logits = head(x)
    assert head.scale.item() == pytest.approx(7.5)
    assert logits.abs().max().item() <= 7.5 + 1e-5
    # exactly scale * cosine(embedding, class weight)
    cos = F.cosine_similarity(head.embed(x)[:, None], head.weight[None], dim=-1)
    torch.testing.assert_close(logits, 7.5 * cos)
    # a class weight aligned with an embedding reaches the bound
    with torch.no_grad():
        head.weight[2] = head.embed(x)[0] * 3
    assert head(x)[0, 2].item() == pytest.approx(7.5, abs=1e-5)


# --- gradients -------------------------------------------------------------------------------
@pytest.mark.parametrize("learnable", [True, False])
def test_gradient_reaches_every_trainable_parameter(learnable: bool) -> None:
    head = make_head(learnable_scale=learnable, with_bn=True)
    names = {name for name, _ in head.named_parameters()}
    assert ("log_scale" in names) == learnable
    assert "log_scale" in head.state_dict()  # checkpoints of both kinds have the same keys
    losses = head.loss(feats(), samples([0, 1, 2, 4]))
    losses["loss"].backward()
    for name, param in head.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    if not learnable:
        assert not head.log_scale.requires_grad and head.log_scale.grad is None
        assert head.scale.item() == pytest.approx(16.0)


# --- softmax vs sigmoid --------------------------------------------------------------------------
def test_softmax_mode_scores_loss_and_labels() -> None:
    head = make_head(logreg=False)
    x, labels = feats(), [0, 3, 3, 1]
    assert not head.loss_module.use_sigmoid
    preds = head.predict(x)
    scores = torch.stack([p.pred_score for p in preds])
    torch.testing.assert_close(scores.sum(dim=1), torch.ones(4))
    torch.testing.assert_close(scores, head(x).softmax(dim=1))
    assert [p.pred_label.item() for p in preds] == scores.argmax(dim=1).tolist()
    loss = head.loss(x, samples(labels))["loss"]
    torch.testing.assert_close(loss, F.cross_entropy(head(x), torch.tensor(labels)))


def test_sigmoid_mode_scores_loss_and_labels() -> None:
    head = make_head(logreg=True)
    x = feats()
    assert head.loss_module.use_sigmoid
    logits = head(x)
    preds = head.predict(x)
    scores = torch.stack([p.pred_score for p in preds])
    torch.testing.assert_close(scores, logits.sigmoid())
    assert not torch.allclose(scores.sum(dim=1), torch.ones(4))
    for pred, score in zip(preds, scores):
        assert pred.pred_label.tolist() == torch.where(score >= 0.5)[0].tolist()
    # independent outputs: moving one class weight changes only that class's score
    with torch.no_grad():
        head.weight[1] += 1.0
    new = torch.stack([p.pred_score for p in head.predict(x)])
    changed = ~torch.isclose(new, scores).all(dim=0)
    assert changed.tolist() == [False, True, False, False, False]
    # multi-label targets -> BCE summed over classes, averaged over samples (mmpretrain)
    labels = [[0, 2], [1], [], [4]]
    target = torch.zeros(4, NUM_CLASSES)
    for i, ls in enumerate(labels):
        target[i, ls] = 1
    logits = head(x)
    loss = head.loss(x, samples(labels))["loss"]
    expected = F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / 4
    torch.testing.assert_close(loss, expected)
    assert not torch.allclose(loss, F.cross_entropy(logits, target))
    # thr=None predicts the arg-max label
    argmax = make_head(logreg=True, thr=None).predict(x)
    assert all(p.pred_label.shape == (1, ) for p in argmax)


# --- flip averaging ------------------------------------------------------------------------------
def test_flip_averaging_equals_two_forward_passes_by_hand(registered: None) -> None:
    model = build_classifier("EmbedNormClassifier", average_flips=True, scale=10.0)
    assert isinstance(model, EmbedNormClassifier)
    model.eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        plain = model.head.embed(model.neck(model.backbone(x)))
        flipped = model.head.embed(model.neck(model.backbone(torch.flip(x, dims=[-1]))))
        mean = F.normalize((plain + flipped) / 2, dim=1)
        expected = 10.0 * mean @ F.normalize(model.head.weight, dim=1).t()
        logits = model(x, mode="tensor")
        preds = model.predict(x)
        no_flip = model.head(model.extract_feat(x))
    torch.testing.assert_close(logits, expected)
    torch.testing.assert_close(torch.stack([p.pred_score for p in preds]), expected.softmax(1))
    assert not torch.allclose(no_flip, expected)  # the flip did change something
    # training is a single pass: in train mode, tensor mode gives the plain logits
    model.train()
    with torch.no_grad():
        torch.testing.assert_close(model(x, mode="tensor"), model.head(model.extract_feat(x)))


def test_average_flips_in_stock_image_classifier_warns(registered: None) -> None:
    model = build_classifier("ImageClassifier", average_flips=True).eval()
    x = torch.randn(2, 3, 64, 64)
    with pytest.warns(UserWarning, match="no features of flipped images"), torch.no_grad():
        preds = model.predict(x)
    with torch.no_grad():
        expected = model.head(model.extract_feat(x)).softmax(1)
    torch.testing.assert_close(torch.stack([p.pred_score for p in preds]), expected)


# --- a real train step ----------------------------------------------------------------------------
@pytest.mark.parametrize(("classifier", "logreg"), [("ImageClassifier", False),
                                                    ("EmbedNormClassifier", True)])
def test_train_step_in_image_classifier(registered: None, classifier: str, logreg: bool) -> None:
    from mmengine.optim import build_optim_wrapper

    model = build_classifier(classifier, logreg=logreg, average_flips=True)
    model.train()
    data = dict(inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8) for _ in range(2)],
                data_samples=samples([1, 3]))
    batch = model.data_preprocessor(data, training=True)
    assert batch["inputs"].shape == (2, 3, 64, 64)
    losses = model(batch["inputs"], batch["data_samples"], mode="loss")
    losses["loss"].backward()
    for name in ("backbone.conv1.weight", "head.proj.weight", "head.weight", "head.log_scale"):
        grad = model.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name
    model.zero_grad()
    # the README's optimizer config: backbone at 0.1 x lr
    with DefaultScope.overwrite_default_scope("mmpretrain"):
        optim = build_optim_wrapper(model, dict(
            optimizer=dict(type="SGD", lr=0.1, momentum=0.9),
            paramwise_cfg=dict(custom_keys={"backbone": dict(lr_mult=0.1)})))
    backbone_ids = {id(p) for p in model.backbone.parameters()}
    for group in optim.optimizer.param_groups:
        lr = 0.01 if id(group["params"][0]) in backbone_ids else 0.1
        assert group["lr"] == pytest.approx(lr)
    before = model.head.weight.detach().clone()
    log = model.train_step(data, optim)
    assert math.isfinite(log["loss"].item())
    assert not torch.equal(before, model.head.weight)


# --- bad inputs ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(scale=0.0), r"scale must be a finite float > 0, got 0.0"),
    (dict(scale=-2), r"scale must be a finite float > 0, got -2"),
    (dict(scale=float("nan")), r"scale must be a finite float > 0"),
    (dict(scale=True), r"scale must be a finite float > 0"),
    (dict(num_classes=0), r"num_classes must be an int > 0, got 0"),
    (dict(embed_dim=0), r"embed_dim must be an int > 0, got 0"),
    (dict(embed_dim=2.5), r"embed_dim must be an int > 0, got 2.5"),
    (dict(in_channels=-1), r"in_channels must be an int > 0, got -1"),
    (dict(logreg=True, cal_acc=True), r"cannot be used with logreg=True"),
    (dict(thr=1.5), r"thr must be in \[0, 1\] or None"),
])
def test_bad_construction(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_head(**kwargs)


def test_bad_features() -> None:
    head = make_head()
    with pytest.raises(ValueError, match=r"expects features \(N, in_channels=16\).*got shape "
                                         r"\(4, 12\)"):
        head((torch.randn(4, 12), ))
    with pytest.raises(ValueError, match=r"got shape \(4, 16, 3\)"):
        head((torch.randn(4, 16, 3), ))


def test_registry_build(registered: None) -> None:
    with DefaultScope.overwrite_default_scope("mmpretrain"):
        head = MODELS.build(dict(type="EmbedNormClsHead", num_classes=3, in_channels=4,
                                 learnable_scale=False, scale=2.0))
        with pytest.raises(ValueError, match="scale"):
            MODELS.build(dict(type="EmbedNormClsHead", num_classes=3, in_channels=4, scale=0))
    assert isinstance(head, EmbedNormClsHead) and head.scale.item() == pytest.approx(2.0)
