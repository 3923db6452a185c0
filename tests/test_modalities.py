"""Answering from a subset of modalities: encoders see only samples that carry theirs; modality dropout."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from autoglm_sdk.encoding import EncoderOutput, encode_present


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
        return EncoderOutput(
            states, torch.ones(len(samples), 1, dtype=torch.bool), states[:, 0], F.normalize(states[:, 0], dim=-1)
        )


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
