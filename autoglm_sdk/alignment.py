"""Contrastive alignment of modalities: CLIP-style symmetric InfoNCE.

For embeddings ``a, b [B, E]`` of the same ``B`` samples from two encoders
(L2-normalised), ``logits = exp(t) * a @ b.T`` with a learnable log-temperature
``t`` (initially ``ln(1/0.07)``, clamped at ``ln 100`` as in CLIP), and the loss
is the mean of cross-entropy along rows and along columns with the diagonal as
the target. With three modalities the loss averages the three pairs. When the
samples carry labels and ``exclude_same_class`` is set, another sample of the
same class is not treated as a negative: its logit is masked out.
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

    def forward(self, embeddings: dict[str, torch.Tensor], labels: torch.Tensor | None = None) -> torch.Tensor:
        """Mean symmetric InfoNCE over every pair of the given embeddings (each ``[B, E]``)."""
        if len(embeddings) < 2:
            raise ValueError("contrastive alignment needs embeddings from at least two encoders")
        scale = self.logit_scale.clamp(max=self.max_log_scale).exp()
        batch = next(iter(embeddings.values())).size(0)
        targets = torch.arange(batch, device=self.logit_scale.device)
        mask = None
        if labels is not None and self.exclude_same_class:
            same = labels.unsqueeze(0) == labels.unsqueeze(1)
            mask = same & ~torch.eye(batch, dtype=torch.bool, device=same.device)
        losses = []
        for first, second in combinations(sorted(embeddings), 2):
            logits = scale * embeddings[first] @ embeddings[second].t()
            if mask is not None:
                logits = logits.masked_fill(mask, float("-inf"))
            losses.append((F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets)) / 2)
        return torch.stack(losses).mean()
