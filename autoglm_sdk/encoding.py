"""What a ModalityEncoder returns."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class EncoderOutput:
    """``states [B, T, D]`` (tokens, patches or frames), ``mask [B, T]`` (True = real), ``pooled [B, D]``."""

    states: torch.Tensor
    mask: torch.Tensor
    pooled: torch.Tensor
