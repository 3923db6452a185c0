"""Contrastive alignment and encoder pretraining: the losses themselves, and as objectives from the manifest."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from autoglm_multimodal.objectives import ContrastiveAlignment as _Alignment
from autoglm_multimodal.specs import AlignmentConfig
from autoglm_sdk.plugin import BuildContext, ManifestError, Port


def ContrastiveAlignment(**options):
    """The objective on its own, reading embeddings passed to it directly."""
    ctx = BuildContext(inputs={"encoders.a": Port("embeddings"), "encoders.b": Port("embeddings")}, stage="alignment")
    return _Alignment(AlignmentConfig(**options), ctx)


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

    return {
        **copy.deepcopy(SMALL_TEXT),
        "train": {"epochs": 2, "batch_size": 8},
        "objectives": {"align": {"plugin": "alignment", **alignment}},
    }


def test_alignment_trains_two_encoders_and_lands_in_the_artifact(tmp_path):
    from autoglm_sdk import build, load, validate_manifest

    manifest = validate_manifest(text_pair_manifest(weight=1.0), allow_import_paths=True)
    result = build(manifest, tmp_path / "art")
    pipeline = load(result.path, allow_import_paths=True)
    align = pipeline.model.objective_objects["objectives.align"]
    assert align.logit_scale.item() != pytest.approx(math.log(1 / 0.07))  # it learned, and was saved
    assert "objectives.align" in result.report["training"]["objectives"]
    assert all("loss/objectives.align" in row for row in result.report["training"]["history"])


def test_alignment_needs_two_encoders():
    from autoglm_sdk import build, validate_manifest
    from autoglm_sdk.plugin import AutoGLMError

    raw = text_pair_manifest()
    del raw["encoders"]["b"]
    with pytest.raises(AutoGLMError, match=r"objectives.align `alignment` does not fit .*needs at least 2 encoder"):
        build(validate_manifest(raw, allow_import_paths=True), "/tmp/never-written")


def test_train_alignment_of_an_older_manifest_says_where_it_moved():
    from fixture_plugins import SMALL_TEXT

    from autoglm_sdk import validate_manifest

    old = {**SMALL_TEXT, "train": {"epochs": 1, "alignment": {"weight": 2.0}}}
    with pytest.raises(
        ManifestError,
        match=r"train.alignment: is an objective now: move it to "
        r'\[objectives.alignment\] with plugin = "alignment"',
    ):
        validate_manifest(old, allow_import_paths=True)


def test_each_pair_compares_only_samples_that_carry_both():
    align = ContrastiveAlignment()
    torch.manual_seed(0)
    e = {k: F.normalize(torch.randn(6, 4), dim=-1) for k in "abc"}
    present = {
        "a": torch.tensor([1, 1, 1, 1, 0, 0], dtype=torch.bool),
        "b": torch.tensor([1, 1, 0, 0, 1, 1], dtype=torch.bool),
        "c": torch.ones(6, dtype=torch.bool),
    }
    got = align(e, present=present)
    ab = align({"a": e["a"][:2], "b": e["b"][:2]})
    ac = align({"a": e["a"][:4], "c": e["c"][:4]})
    bc = align({"b": e["b"][[0, 1, 4, 5]], "c": e["c"][[0, 1, 4, 5]]})
    assert got.item() == pytest.approx(torch.stack([ab, ac, bc]).mean().item(), rel=1e-6)
    lonely = {
        "a": torch.tensor([1, 0, 0, 0, 0, 0], dtype=torch.bool),
        "b": torch.tensor([0, 1, 0, 0, 0, 0], dtype=torch.bool),
    }
    zero = align({"a": e["a"], "b": e["b"]}, present=lonely)  # no pair has two samples: zero, still differentiable
    assert zero.item() == 0.0 and zero.requires_grad


def test_unlabelled_samples_are_only_their_own_class():
    from autoglm_sdk.plugin import class_ids

    ids = class_ids([{"label": 1}, {}, {"label": 1}, {}])
    assert ids.tolist() == [1, -2, 1, -4]


def test_pretraining_trains_each_encoder_alone_with_shared_prototypes(tmp_path):
    from autoglm_sdk import build, validate_manifest

    manifest = text_pair_manifest(weight=1.0)
    manifest["objectives"]["pre"] = {
        "plugin": "encoder-pretraining",
        "epochs": 2,
        "stage_epochs": {"encoders.b": 1},
        "lr": 0.01,
        "lr_scale_after": 0.0,
    }
    report = build(validate_manifest(manifest, allow_import_paths=True), tmp_path / "art").report
    pretrained = report["training"]["pretraining"]["objectives.pre"]
    assert {k: v["epochs_run"] for k, v in pretrained.items()} == {"encoders.a": 2, "encoders.b": 1}
    assert all(
        0.0 <= v["best_val_accuracy"] <= 1.0 and len(v["history"]) == v["epochs_run"] for v in pretrained.values()
    )


def test_pretraining_names_unknown_stages():
    from autoglm_sdk import build, validate_manifest
    from autoglm_sdk.plugin import AutoGLMError

    manifest = text_pair_manifest(weight=1.0)
    manifest["objectives"]["pre"] = {"plugin": "encoder-pretraining", "stage_epochs": {"encoders.c": 3}}
    with pytest.raises(AutoGLMError, match=r"stage_epochs: `encoders.c` is not a pretrained encoder stage"):
        build(validate_manifest(manifest, allow_import_paths=True), "/tmp/never-written")
    manifest["objectives"]["pre"] = {"plugin": "encoder-pretraining", "stages": ["encoders.z"]}
    with pytest.raises(AutoGLMError, match=r"objectives.pre `encoder-pretraining` .*`encoders.z` is not an encoder"):
        build(validate_manifest(manifest, allow_import_paths=True), "/tmp/never-written")


from autoglm_sdk.testing import ObjectiveContract  # noqa: E402


class TestAlignmentContract(ObjectiveContract):
    plugin = "alignment"


class TestPretrainingContract(ObjectiveContract):
    plugin = "encoder-pretraining"


class TestModalityDropoutContract(ObjectiveContract):
    plugin = "modality-dropout"


def test_modality_dropout_selects_on_each_modality_alone_and_all_together():
    from autoglm_multimodal.objectives import ModalityDropout
    from autoglm_multimodal.specs import ModalityDropoutConfig

    ctx = BuildContext(inputs={"data": Port("samples", frozenset({"image", "text"}))}, stage="objectives.dropout")
    dropout = ModalityDropout(ModalityDropoutConfig(rate=0.5), ctx)
    seen = []

    def accuracy_of(samples):
        seen.append(sorted(samples[0]))
        return {"image": 0.2, "text": 0.6}[next(k for k in samples[0] if k != "label")]

    score = dropout.validation_score(accuracy_of, [{"image": 1, "text": "t", "label": 0}], 0.7)
    assert score == pytest.approx((0.2 + 0.6 + 0.7) / 3)
    assert seen == [["image", "label"], ["label", "text"]]
    batch = dropout.prepare_batch([{"image": 1, "text": "t", "label": 0}] * 50, torch.Generator().manual_seed(0))
    assert any("image" not in s for s in batch) and all(("image" in s) or ("text" in s) for s in batch)
