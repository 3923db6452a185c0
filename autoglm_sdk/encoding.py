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


class ProjectionHead(torch.nn.Module):
    """``pooled [B, D] -> embedding [B, E]``: a linear map into the pipeline's shared
    space followed by L2 normalisation, so cosine similarity is a dot product."""

    def __init__(self, in_dim: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(in_dim, embed_dim, bias=False)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(self.proj(pooled), dim=-1)
