"""Knowledge distillation as a training objective (Hinton et al., 2015): the student matches the softened
predictions of a frozen teacher, which carry more than the labels (how alike the classes look to it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from autoglm_sdk.plugin import TaskSpec, scored


@dataclass
class Distillation:
    """``T² * KL(teacher || student)`` on distributions softened by temperature ``T``; T² keeps the gradient's
    scale independent of T. The teacher runs on the same batch without gradients."""

    teacher: Any
    task: TaskSpec
    weight: float = 0.5
    temperature: float = 2.0
    name: str = "distillation"

    def loss(self, pred: Any, batch: list[dict[str, Any]]) -> torch.Tensor | None:
        logits, targets = scored(pred, batch, self.task)
        if targets.numel() == 0:
            return None
        with torch.no_grad():
            target, _ = scored(self.teacher(batch), batch, self.task)
        t = self.temperature
        soft = F.log_softmax(target.float() / t, -1)
        return t**2 * F.kl_div(F.log_softmax(logits.float() / t, -1), soft, log_target=True, reduction="batchmean")
