"""Training objectives: the loss is a weighted list of terms (see :class:`~autoglm_sdk.protocols.Objective`).

The core owns two kinds of term: the task's classification loss and each
stage's ``auxiliary_loss()`` (a learned graph's regularisers). Everything else,
contrastive alignment, distillation, extraction or language-model losses, is an
objective a plugin contributes; the trainer never learns a new argument for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from autoglm_sdk.errors import DataError
from autoglm_sdk.protocols import TaskSpec


def scored(pred: Any, samples: list[dict[str, Any]], task: TaskSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, targets) restricted to what the split scores: labelled nodes (node level) or labelled samples."""
    if task.level == "node":
        graph = pred.graph
        y = getattr(graph, "y", None)
        if y is None:
            raise DataError("node-level task but the graph reaching the decoder carries no `y`")
        mask = getattr(graph, "label_mask", None)
        if mask is None:
            mask = torch.ones_like(y, dtype=torch.bool)
        return pred.logits[mask], y[mask]
    labelled = [i for i, s in enumerate(samples) if "label" in s]  # unlabelled samples serve other objectives only
    labels = torch.tensor([int(samples[i]["label"]) for i in labelled], dtype=torch.long, device=pred.logits.device)
    if len(labelled) == len(samples):
        return pred.logits, labels
    return pred.logits[torch.tensor(labelled, dtype=torch.long, device=pred.logits.device)], labels


def class_ids(samples: list[dict[str, Any]], device: Any = None) -> torch.Tensor:
    """Each sample's label, or a negative id of its own where it has none (it is then of no class but its own,
    which is what same-class masking and same-class retrieval need)."""
    return torch.tensor([int(s["label"]) if "label" in s else -1 - i for i, s in enumerate(samples)], device=device)


@dataclass
class TaskLoss:
    """Cross-entropy of the decoder's logits against the labels the split scores; for a text task, the decoder's
    own cross-entropy over the target text's tokens. For scarce or imbalanced labels: per-class ``class_weights``,
    ``label_smoothing``, and ``balanced`` (node tasks: each step draws the labelled nodes it scores with replacement,
    every class equally often; graph tasks draw balanced batches in the trainer instead)."""

    task: TaskSpec
    weight: float = 1.0
    name: str = "task"
    class_weights: torch.Tensor | None = None
    label_smoothing: float = 0.0
    balanced: bool = False
    log_prior: torch.Tensor | None = None  # tau * log(class prior): the logit adjustment, added while training

    def loss(self, pred: Any, batch: list[dict[str, Any]]) -> torch.Tensor | None:
        if self.task.textual:  # the decoder scored its target tokens itself (teacher forcing)
            return pred.text.loss if pred.text.target_tokens else None
        logits, targets = scored(pred, batch, self.task)
        if not targets.numel():
            return None
        if self.balanced and self.task.level == "node" and pred.logits.requires_grad:
            drawn = torch.multinomial(1.0 / torch.bincount(targets)[targets].float(), targets.numel(), replacement=True)
            logits, targets = logits[drawn], targets[drawn]
        if self.log_prior is not None and pred.logits.requires_grad:
            logits = logits.float() + self.log_prior.to(logits.device)
        weight = None if self.class_weights is None else self.class_weights.to(logits.device)
        return F.cross_entropy(logits.float(), targets, weight=weight, label_smoothing=self.label_smoothing)


def label_counts(samples: list[dict[str, Any]], task: TaskSpec) -> torch.Tensor:
    """How many training labels each class has: labelled samples, or a node task's labelled nodes."""
    counts = torch.zeros(task.num_classes, dtype=torch.long)
    for sample in samples:
        graph = sample.get("graph")
        if task.level == "node" and graph is not None:
            mask = getattr(graph, "label_mask", None)
            y = graph.y if mask is None else graph.y[mask]
            counts += torch.bincount(y.view(-1).long(), minlength=task.num_classes)
        elif "label" in sample:
            counts[int(sample["label"])] += 1
    return counts


def class_weights(counts: torch.Tensor, scheme: str, beta: float = 0.999) -> torch.Tensor | None:
    """Per-class loss weights with mean 1 over the classes present: ``balanced`` is inverse frequency,
    ``effective`` the inverse effective number of samples (1 - beta^n) / (1 - beta) (Cui et al., 2019)."""
    if scheme == "none":
        return None
    present = counts > 0
    n = counts.double().clamp_min(1)
    raw = 1.0 / n if scheme == "balanced" else (1 - beta) / (1 - beta**n)
    raw = torch.where(present, raw, torch.zeros_like(raw))
    return (raw * int(present.sum()) / raw.sum()).float()


@dataclass
class StageLoss:
    """A stage's own ``auxiliary_loss()`` (computed in its last forward pass), e.g. a learned graph's regularisers."""

    stage: Any
    name: str
    weight: float = 1.0

    def loss(self, pred: Any, batch: list[dict[str, Any]]) -> torch.Tensor | None:
        return self.stage.auxiliary_loss()


def stage_losses(model: Any) -> list[StageLoss]:
    """One objective per stage that defines ``auxiliary_loss()``."""
    stages = getattr(model, "stage_objects", {})
    return [StageLoss(s, key) for key, s in stages.items() if callable(getattr(s, "auxiliary_loss", None))]


def objective_terms(objectives: list[Any], pred: Any, batch: list[dict[str, Any]]) -> tuple[torch.Tensor, dict]:
    """The weighted sum of every objective's loss on one batch, and each term's unweighted value by name.

    Terms with weight 0 or nothing to say (None) are left out; a batch where no term speaks gives a zero.
    """
    total: torch.Tensor | None = None
    values: dict[str, float] = {}
    for objective in objectives:
        if not objective.weight:
            continue
        term = objective.loss(pred, batch)
        if term is None:
            continue
        values[objective.name] = float(term.detach())
        total = objective.weight * term if total is None else total + objective.weight * term
    if total is None:
        total = pred.logits.sum() * 0.0
    return total, values
