"""``ImageClassifier`` that feeds features of horizontally flipped images to the head."""
from __future__ import annotations

import torch
from mmpretrain.models.classifiers import ImageClassifier
from mmpretrain.structures import DataSample
from torch import Tensor


class EmbedNormClassifier(ImageClassifier):
    """``ImageClassifier`` with test-time flip averaging for ``EmbedNormClsHead``.

    Same arguments as ``ImageClassifier``. When ``head.average_flips`` is true, ``predict``
    (and ``forward(mode='tensor')`` in eval mode) also runs backbone + neck on
    ``torch.flip(inputs, dims=[-1])`` (N, C, H, W) and passes those features to the head as
    ``flip_feats``; the head averages the two normalized embeddings. Training is unchanged
    (one pass), and with any other head this class behaves exactly like ``ImageClassifier``.
    """

    def _flip_feats(self, inputs: Tensor) -> tuple | None:
        if self.with_head and getattr(self.head, "average_flips", False):
            return self.extract_feat(torch.flip(inputs, dims=[-1]))
        return None

    def forward(self,
                inputs: Tensor,
                data_samples: list[DataSample] | None = None,
                mode: str = "tensor"):
        """As ``ImageClassifier.forward``; eval-mode ``'tensor'`` logits use flip averaging."""
        if mode == "tensor" and not self.training:
            flip_feats = self._flip_feats(inputs)
            if flip_feats is not None:
                return self.head(self.extract_feat(inputs), flip_feats)
        return super().forward(inputs, data_samples, mode)

    def predict(self,
                inputs: Tensor,
                data_samples: list[DataSample] | None = None,
                **kwargs) -> list[DataSample]:
        """Predictions (list of ``DataSample``) for ``inputs`` (N, C, H, W)."""
        feats = self.extract_feat(inputs)
        flip_feats = self._flip_feats(inputs)
        if flip_feats is not None:
            kwargs["flip_feats"] = flip_feats
        return self.head.predict(feats, data_samples, **kwargs)
