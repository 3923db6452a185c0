"""Objectives for scarce and imbalanced labels, in the decoder's embedding space.

Both work on the rows the decoder's head classifies (``decoder.features``: node states, pooled graphs, encoder
embeddings) for the labelled examples of a batch, and score new rows through the head (``decoder.classify``):

* ``mixup``: convex mixes of two examples' rows, scored against the same mix of their labels (manifold mixup at
  the head; Zhang et al., 2018; Verma et al., 2019);
* ``smote``: synthetic minority rows between a member of a class and one of its ``k`` nearest same-class
  neighbours, until every class is as large as the largest (Chawla et al., 2002), either by imbalanced-learn's
  ``SMOTE`` on detached rows (only the head learns from them) or by the same interpolation in torch, through which
  the stages upstream (the reasoner) learn too.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from autoglm_sdk.plugin import AutoGLMError, BuildContext


class _EmbeddingObjective:
    """Finds the labelled rows of a batch in the decoder's embedding space."""

    kind = "objective"

    def __init__(self, config: Any, ctx: BuildContext) -> None:
        self.config = config
        self.weight = config.weight
        self.name = ctx.stage or self.name
        self.level = ctx.task.level if ctx.task is not None else "graph"
        self.generator = torch.Generator().manual_seed(ctx.seed)
        self.decoder: Any = None

    def attach(self, model: Any) -> None:
        decoder = model.stage_objects["decoder"]
        if not (callable(getattr(decoder, "features", None)) and callable(getattr(decoder, "classify", None))):
            raise AutoGLMError(
                f"{self.name}: the decoder {type(decoder).__name__} has no features()/classify() to work in its "
                "embedding space",
                hint='use decoder plugin = "classifier"',
            )
        self.decoder = decoder

    def rows(self, pred: Any, batch: list[dict[str, Any]]) -> tuple[Tensor, Tensor]:
        """(rows, labels) of the batch's labelled examples."""
        rows = self.decoder.features(pred.graph)
        if self.level == "node":
            mask = getattr(pred.graph, "label_mask", None)
            y = pred.graph.y
            return (rows, y) if mask is None else (rows[mask], y[mask])
        labelled = [i for i, s in enumerate(batch) if "label" in s]
        labels = torch.tensor([int(batch[i]["label"]) for i in labelled], device=rows.device)
        return rows[torch.tensor(labelled, dtype=torch.long, device=rows.device)], labels


class Mixup(_EmbeddingObjective):
    name = "mixup"

    def loss(self, pred: Any, batch: list[dict[str, Any]]) -> Tensor | None:
        if not pred.logits.requires_grad:  # evaluation: nothing to regularise
            return None
        rows, labels = self.rows(pred, batch)
        if labels.numel() < 2:
            return None
        alpha = self.config.alpha
        lam = float(torch.distributions.Beta(alpha, alpha).sample())
        partner = torch.randperm(labels.numel(), generator=self.generator).to(rows.device)
        logits = self.decoder.classify(lam * rows + (1 - lam) * rows[partner]).float()
        return lam * F.cross_entropy(logits, labels) + (1 - lam) * F.cross_entropy(logits, labels[partner])


class Smote(_EmbeddingObjective):
    name = "smote"

    def loss(self, pred: Any, batch: list[dict[str, Any]]) -> Tensor | None:
        if not pred.logits.requires_grad:
            return None
        rows, labels = self.rows(pred, batch)
        counts = torch.bincount(labels)
        present = counts[counts > 0]
        if present.numel() < 2 or int(present.min()) < 2 or int(present.min()) == int(present.max()):
            return None  # one class, a class of one, or nothing to even out
        k = min(self.config.k, int(present.min()) - 1)
        make = self._imblearn if self.config.implementation == "imbalanced-learn" else self._torch
        synthetic, synthetic_labels = make(rows, labels, k)
        if synthetic_labels.numel() == 0:
            return None
        return F.cross_entropy(self.decoder.classify(synthetic).float(), synthetic_labels)

    def _imblearn(self, rows: Tensor, labels: Tensor, k: int) -> tuple[Tensor, Tensor]:
        from imblearn.over_sampling import SMOTE

        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator))
        sampler = SMOTE(k_neighbors=k, random_state=seed)
        x, y = sampler.fit_resample(rows.detach().cpu().double().numpy(), labels.cpu().numpy())
        new = slice(labels.numel(), None)  # fit_resample appends the synthetic rows after the originals
        return torch.as_tensor(x[new], dtype=rows.dtype, device=rows.device), torch.as_tensor(y[new]).to(rows.device)

    def _torch(self, rows: Tensor, labels: Tensor, k: int) -> tuple[Tensor, Tensor]:
        counts = torch.bincount(labels)
        made, made_labels = [], []
        for c in range(counts.numel()):
            need = int(counts.max() - counts[c])
            if need == 0 or counts[c] == 0:
                continue
            members = rows[labels == c]
            distance = torch.cdist(members.detach(), members.detach())
            distance.fill_diagonal_(float("inf"))
            nearest = distance.topk(k, largest=False).indices  # [members, k]
            base = torch.randint(0, members.size(0), (need,), generator=self.generator).to(rows.device)
            pick = torch.randint(0, k, (need,), generator=self.generator).to(rows.device)
            step = torch.rand(need, 1, generator=self.generator).to(rows.device, rows.dtype)
            made.append(members[base] + step * (members[nearest[base, pick]] - members[base]))
            made_labels.append(torch.full((need,), c, dtype=labels.dtype, device=rows.device))
        if not made:
            return rows[:0], labels[:0]
        return torch.cat(made), torch.cat(made_labels)
