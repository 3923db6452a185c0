"""What a ModalityEncoder returns."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class EncoderOutput:
    """``states [B, T, D]`` (tokens, patches or frames), ``mask [B, T]`` (True = real), ``pooled [B, D]``,
    and, for encoders with a projection head, ``embedding [B, E]``: ``pooled`` projected into the
    pipeline's shared space and L2-normalised (what contrastive alignment compares)."""

    states: torch.Tensor
    mask: torch.Tensor
    pooled: torch.Tensor
    embedding: torch.Tensor | None = None
