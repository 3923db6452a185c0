"""Contrastive alignment of modalities: CLIP-style symmetric InfoNCE.

For embeddings ``a, b [B, E]`` of the same ``B`` samples from two encoders
(L2-normalised), ``logits = exp(t) * a @ b.T`` with a learnable log-temperature
``t`` (initially ``ln(1/0.07)``, clamped at ``ln 100`` as in CLIP), and the loss
is the mean of cross-entropy along rows and along columns with the diagonal as
the target. With three modalities the loss averages the pairs. A pair compares
only the samples that carry both of its modalities (``present``), so with
modality dropout every pair still sees most of the batch. When the samples
carry labels and ``exclude_same_class`` is set, another sample of the same
class is not treated as a negative: its logit is masked out.
"""

from __future__ import annotations

import math
from itertools import combinations

import torch
import torch.nn.functional as F
from torch import nn


class ContrastiveAlignment(nn.Module):
    def __init__(self, init_temperature: float = 0.07, max_logit_scale: float = 100.0, exclude_same_class: bool = True) -> None:
        super().__init__()
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))
        self.max_log_scale = math.log(max_logit_scale)
        self.exclude_same_class = exclude_same_class

    def forward(self, embeddings: dict[str, torch.Tensor], labels: torch.Tensor | None = None,
                present: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Mean symmetric InfoNCE over every pair of the given embeddings (each ``[B, E]``); ``present``
        (``[B]`` bool per key) limits each pair to the samples that carry both. Pairs with fewer than two
        such samples are skipped; with none left the loss is a zero that still has a gradient path."""
        if len(embeddings) < 2:
            raise ValueError("contrastive alignment needs embeddings from at least two encoders")
        scale = self.logit_scale.clamp(max=self.max_log_scale).exp()
        losses = []
        for first, second in combinations(sorted(embeddings), 2):
            a, b, pair_labels = embeddings[first], embeddings[second], labels
            if present is not None and (first in present or second in present):
                rows = torch.ones(a.size(0), dtype=torch.bool, device=a.device)
                for key in (first, second):
                    if key in present:
                        rows &= present[key].to(a.device)
                a, b = a[rows], b[rows]
                pair_labels = labels[rows] if labels is not None else None
            if a.size(0) < 2:
                continue
            losses.append(self._pair(scale * a @ b.t(), pair_labels))
        if not losses:
            return self.logit_scale * 0.0
        return torch.stack(losses).mean()

    def _pair(self, logits: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        targets = torch.arange(logits.size(0), device=logits.device)
        if labels is not None and self.exclude_same_class:
            same = labels.unsqueeze(0) == labels.unsqueeze(1)
            logits = logits.masked_fill(same & ~torch.eye(len(labels), dtype=torch.bool, device=same.device),
                                        float("-inf"))
        return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets)) / 2
