"""Answering from a subset of modalities: encoders see only samples that carry theirs; modality dropout."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from autoglm_sdk.encoding import EncoderOutput, encode_present
from autoglm_sdk.trainer import drop_modalities


class CountingEncoder(nn.Module):
    """Reads ``sample['image']`` (a number); records how many samples it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(1, 4)
        self.seen = []

    def forward(self, samples):
        self.seen.append(len(samples))
        x = torch.tensor([[float(s["image"])] for s in samples])
        states = self.lin(x).unsqueeze(1)
        return EncoderOutput(states, torch.ones(len(samples), 1, dtype=torch.bool), states[:, 0], F.normalize(states[:, 0], dim=-1))


def test_encoders_only_see_samples_that_carry_their_modality():
    encoder = CountingEncoder()
    out = encode_present(encoder, [{"image": 1}, {"text": "x"}, {"image": 3}], "image", dim=4)
    assert encoder.seen == [2]
    assert out.present.tolist() == [True, False, True]
    assert out.mask[1].sum() == 0 and torch.equal(out.pooled[1], torch.zeros(4))
    alone = encode_present(encoder, [{"image": 3}], "image", dim=4)
    assert torch.allclose(out.pooled[2], alone.pooled[0])


def test_a_batch_without_the_modality_gets_empty_rows():
    encoder = CountingEncoder()
    out = encode_present(encoder, [{"text": "a"}, {"text": "b"}], "image", dim=4)
    assert encoder.seen == [] and out.present.tolist() == [False, False] and out.pooled.shape == (2, 4)


def test_modality_dropout_keeps_at_least_one():
    generator = torch.Generator().manual_seed(0)
    samples = [{"image": 1, "audio": 2, "text": "t", "label": 0}] * 200
    dropped = drop_modalities(samples, ["audio", "image", "text"], 0.9, generator)
    assert all(any(m in s for m in ("audio", "image", "text")) and s["label"] == 0 for s in dropped)
    assert any(len([m for m in ("audio", "image", "text") if m in s]) == 1 for s in dropped)
