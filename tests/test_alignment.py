"""Contrastive alignment: the loss itself, and as a training objective from the manifest."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from autoglm_sdk.alignment import ContrastiveAlignment
from autoglm_sdk.errors import ManifestError


def test_temperature_starts_at_clip_value_and_is_clamped():
    align = ContrastiveAlignment()
    assert align.logit_scale.item() == pytest.approx(math.log(1 / 0.07))
    with torch.no_grad():
        align.logit_scale.fill_(10.0)
    a = F.normalize(torch.randn(4, 8), dim=-1)
    # with the scale clamped at 100, identical embeddings give a loss bounded away from exp(10) logits
    assert torch.isfinite(align({"a": a, "b": a}))


def test_matching_pairs_score_lower_than_shuffled_ones():
    torch.manual_seed(0)
    align = ContrastiveAlignment()
    a = F.normalize(torch.randn(16, 8), dim=-1)
    b = F.normalize(a + 0.05 * torch.randn(16, 8), dim=-1)
    assert align({"a": a, "b": b}) < align({"a": a, "b": b[torch.randperm(16)]})


def test_same_class_samples_are_not_negatives():
    align = ContrastiveAlignment(exclude_same_class=True)
    a = F.normalize(torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), dim=-1)  # two samples of class 0 look alike
    labels = torch.tensor([0, 0, 1])
    masked = align({"a": a, "b": a}, labels)
    unmasked = ContrastiveAlignment(exclude_same_class=False)({"a": a, "b": a}, labels)
    assert masked < unmasked


def test_three_modalities_average_three_pairs():
    align = ContrastiveAlignment()
    e = {k: F.normalize(torch.randn(5, 4), dim=-1) for k in "abc"}
    pairs = [align({x: e[x], y: e[y]}) for x, y in (("a", "b"), ("a", "c"), ("b", "c"))]
    assert align(e).item() == pytest.approx(torch.stack(pairs).mean().item(), rel=1e-6)


def text_pair_manifest(**alignment):
    from fixture_plugins import SMALL_TEXT

    return {**SMALL_TEXT, "train": {"epochs": 2, "batch_size": 8, "alignment": alignment}}


def test_alignment_trains_two_encoders_and_lands_in_the_artifact(tmp_path):
    from autoglm_sdk import load
    from autoglm_sdk.builder import build
    from autoglm_sdk.manifest import validate_manifest

    manifest = validate_manifest(text_pair_manifest(weight=1.0), allow_import_paths=True)
    result = build(manifest, tmp_path / "art")
    pipeline = load(result.path, allow_import_paths=True)
    assert pipeline.model.alignment is not None
    assert pipeline.model.alignment.logit_scale.item() != pytest.approx(math.log(1 / 0.07))  # it learned


def test_alignment_needs_two_encoders():
    from autoglm_sdk.builder import build
    from autoglm_sdk.manifest import validate_manifest

    manifest = validate_manifest(text_pair_manifest(stages=["encoders.a"]), allow_import_paths=True)
    with pytest.raises(ManifestError, match="needs at least two encoder stages"):
        build(manifest, "/tmp/never-written")
