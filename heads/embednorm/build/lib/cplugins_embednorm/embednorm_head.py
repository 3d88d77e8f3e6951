"""Normalized-embedding cosine classification head for mmpretrain (transfer learning).

``feats[-1]`` (N, in_channels) -> Linear -> [BatchNorm1d] -> L2-normalize -> embedding e
(N, embed_dim), and logits = scale * <e, w_k / |w_k|> (N, num_classes), so every logit lies
in [-scale, scale]. ``logreg=True`` reads the logits as independent sigmoid (one-vs-rest)
outputs, ``logreg=False`` as softmax outputs.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.models.heads import ClsHead
from mmpretrain.structures import DataSample, label_to_onehot
from torch import Tensor

Feats = Union[Tensor, Sequence[Tensor]]


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be an int > 0, got {value!r}")
    return value


class EmbedNormClsHead(ClsHead):
    """Cosine classifier on L2-normalized embeddings.

    Layers: ``proj = Linear(in_channels, embed_dim)``, then ``BatchNorm1d(embed_dim)`` if
    ``with_bn`` (no activation: a ReLU would confine unit embeddings to one orthant), then
    L2 normalization; class weights ``weight`` (num_classes, embed_dim) are L2-normalized
    too, and the cosines are multiplied by ``scale``.

    Args:
        num_classes: number of classes (> 0).
        in_channels: channels of ``feats[-1]`` (> 0); (N, C, H, W) maps are average-pooled.
        embed_dim: embedding size (> 0). Defaults to 256.
        scale: cosine-logit scale (temperature inverse), a float > 0. Defaults to 16.
        learnable_scale: learn the scale (stored as the parameter ``log_scale``) or keep it
            fixed (a buffer of the same name). Defaults to True.
        logreg: independent sigmoid outputs (multi-label; loss defaults to
            ``CrossEntropyLoss(use_sigmoid=True)`` on one-hot/multi-hot targets, predictions
            are sigmoid scores) instead of softmax (``CrossEntropyLoss``). Defaults to False.
        average_flips: at test time, average the normalized embeddings of the image and of
            its horizontal flip (then re-normalize). The flipped features come from
            ``EmbedNormClassifier`` (or ``predict(..., flip_feats=...)``); inside a stock
            ``ImageClassifier`` none are given and the head warns and predicts without.
        with_bn: BatchNorm1d after the projection. Defaults to False.
        thr: with ``logreg``, labels whose score >= ``thr`` are predicted; ``None``
            predicts the arg-max label. Defaults to 0.5.
        loss: loss config or module; ``None`` picks the default of the mode (see above).
        topk, cal_acc, init_cfg: as in ``ClsHead`` (``cal_acc`` only without ``logreg``).
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 embed_dim: int = 256,
                 scale: float = 16.0,
                 learnable_scale: bool = True,
                 logreg: bool = False,
                 average_flips: bool = False,
                 with_bn: bool = False,
                 thr: float | None = 0.5,
                 loss: dict | nn.Module | None = None,
                 topk: int | tuple[int, ...] = (1, ),
                 cal_acc: bool = False,
                 init_cfg: dict | None = None) -> None:
        _check_positive_int("num_classes", num_classes)
        _check_positive_int("in_channels", in_channels)
        _check_positive_int("embed_dim", embed_dim)
        if (isinstance(scale, bool) or not isinstance(scale, (int, float))
                or not math.isfinite(scale) or scale <= 0):
            raise ValueError(f"scale must be a finite float > 0, got {scale!r}")
        if logreg and cal_acc:
            raise ValueError("cal_acc computes single-label accuracy; it cannot be used with "
                             "logreg=True")
        if thr is not None and not 0 <= thr <= 1:
            raise ValueError(f"thr must be in [0, 1] or None, got {thr!r}")
        if loss is None:
            loss = dict(type="CrossEntropyLoss", use_sigmoid=True, loss_weight=1.0) if logreg \
                else dict(type="CrossEntropyLoss", loss_weight=1.0)
        super().__init__(loss=loss, topk=topk, cal_acc=cal_acc, init_cfg=init_cfg)
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.embed_dim = embed_dim
        self.logreg = bool(logreg)
        self.average_flips = bool(average_flips)
        self.learnable_scale = bool(learnable_scale)
        self.thr = thr
        self.proj = nn.Linear(in_channels, embed_dim)
        self.bn = nn.BatchNorm1d(embed_dim) if with_bn else nn.Identity()
        self.weight = nn.Parameter(torch.empty(num_classes, embed_dim))
        log_scale = torch.tensor(math.log(float(scale)))
        if self.learnable_scale:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale)
        nn.init.xavier_uniform_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)
        nn.init.normal_(self.weight, std=0.01)
        self._warned_no_flip = False

    @property
    def scale(self) -> Tensor:
        """The current logit scale (0-d tensor, > 0)."""
        return self.log_scale.exp()

    def _last_feature(self, feats: Feats) -> Tensor:
        x = feats if isinstance(feats, Tensor) else feats[-1]
        if x.dim() == 4:
            x = x.mean(dim=(2, 3))
        if x.dim() != 2 or x.shape[1] != self.in_channels:
            raise ValueError(f"EmbedNormClsHead expects features (N, in_channels="
                             f"{self.in_channels}) or (N, {self.in_channels}, H, W), got shape "
                             f"{tuple(x.shape)}")
        return x

    def embed(self, feats: Feats) -> Tensor:
        """Unit-norm embeddings (N, embed_dim) of ``feats[-1]``."""
        return F.normalize(self.bn(self.proj(self._last_feature(feats))), dim=1)

    def pre_logits(self, feats: Feats) -> Tensor:
        """The normalized embeddings (N, embed_dim); ``extract_feat(stage='pre_logits')``."""
        return self.embed(feats)

    def cosine_logits(self, embeddings: Tensor) -> Tensor:
        """``scale * cos(e, w_k)`` (N, num_classes) for unit embeddings (N, embed_dim)."""
        return self.scale * embeddings @ F.normalize(self.weight, dim=1).t()

    def forward(self, feats: Feats, flip_feats: Feats | None = None) -> Tensor:
        """Logits (N, num_classes); with ``flip_feats`` the two embeddings are averaged."""
        embeddings = self.embed(feats)
        if flip_feats is not None:
            embeddings = F.normalize((embeddings + self.embed(flip_feats)) / 2, dim=1)
        return self.cosine_logits(embeddings)

    def _get_loss(self, cls_score: Tensor, data_samples: list[DataSample], **kwargs) -> dict:
        if not self.logreg:
            return super()._get_loss(cls_score, data_samples, **kwargs)
        if "gt_score" in data_samples[0]:
            target = torch.stack([s.gt_score for s in data_samples]).float()
        else:
            target = torch.stack([label_to_onehot(s.gt_label, self.num_classes)
                                  for s in data_samples]).float()
        target = target.to(cls_score.device)
        loss = self.loss_module(cls_score, target, avg_factor=cls_score.size(0), **kwargs)
        return dict(loss=loss)

    def predict(self,
                feats: Feats,
                data_samples: list[DataSample | None] | None = None,
                flip_feats: Feats | None = None) -> list[DataSample]:
        """Predictions; ``flip_feats`` (features of the flipped images) are used only with
        ``average_flips``."""
        if self.average_flips and flip_feats is None and not self._warned_no_flip:
            warnings.warn("EmbedNormClsHead(average_flips=True) got no features of flipped "
                          "images and predicts without flip averaging; use "
                          "EmbedNormClassifier, which provides them", stacklevel=2)
            self._warned_no_flip = True
        cls_score = self(feats, flip_feats if self.average_flips else None)
        return self._get_predictions(cls_score, data_samples)

    def _get_predictions(self, cls_score: Tensor,
                         data_samples: list[DataSample | None] | None) -> list[DataSample]:
        if not self.logreg:
            return super()._get_predictions(cls_score, data_samples)
        scores = cls_score.sigmoid()
        if data_samples is None:
            data_samples = [None] * scores.size(0)
        out = []
        for sample, score in zip(data_samples, scores):
            sample = DataSample() if sample is None else sample
            if self.thr is None:
                label = score.argmax(dim=0, keepdim=True)
            else:
                label = torch.where(score >= self.thr)[0]
            out.append(sample.set_pred_score(score).set_pred_label(label.detach()))
        return out

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, embed_dim={self.embed_dim}, "
                f"logreg={self.logreg}, learnable_scale={self.learnable_scale}, "
                f"average_flips={self.average_flips}")
