"""What a ModalityEncoder returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
    #: ``[B]`` bool, False for samples that lack the modality (their rows are zeros, their mask all False)
    present: torch.Tensor | None = None


def encode_present(
    module: torch.nn.Module, samples: list[dict], modality: str, dim: int | None, call: Any = None
) -> EncoderOutput:
    """Run an encoder on the samples that carry ``modality`` and give the others empty rows.

    This is how a pipeline answers from any subset of its modalities: an encoder
    never sees a sample without its input, and downstream stages see ``present``.
    ``call`` runs the encoder instead of ``module`` itself (a backend's inference runner).
    """
    call = call or module
    present = torch.tensor([modality in s for s in samples], dtype=torch.bool)
    if bool(present.all()):
        out = call(samples)
        out.present = present.to(out.pooled.device)
        return out
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    embed_dim = getattr(getattr(module, "config", None), "embed_dim", None)
    if not bool(present.any()):
        size = dim or 1
        return EncoderOutput(
            states=torch.zeros(len(samples), 1, size, device=device),
            mask=torch.zeros(len(samples), 1, dtype=torch.bool, device=device),
            pooled=torch.zeros(len(samples), size, device=device),
            embedding=torch.zeros(len(samples), embed_dim, device=device) if embed_dim else None,
            present=present.to(device),
        )
    index = present.nonzero().view(-1)
    part = call([samples[i] for i in index.tolist()])
    index = index.to(part.pooled.device)

    def spread(values: torch.Tensor | None) -> torch.Tensor | None:
        if values is None:
            return None
        full = values.new_zeros((len(samples), *values.shape[1:]))
        return full.index_copy(0, index, values)

    return EncoderOutput(
        spread(part.states),
        spread(part.mask),
        spread(part.pooled),
        spread(part.embedding),
        present.to(part.pooled.device),
    )


class ProjectionHead(torch.nn.Module):
    """``pooled [B, D] -> embedding [B, E]``: a linear map into the pipeline's shared
    space followed by L2 normalisation, so cosine similarity is a dot product."""

    def __init__(self, in_dim: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(in_dim, embed_dim, bias=False)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(self.proj(pooled), dim=-1)
