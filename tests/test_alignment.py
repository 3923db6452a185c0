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


def test_each_pair_compares_only_samples_that_carry_both():
    align = ContrastiveAlignment()
    torch.manual_seed(0)
    e = {k: F.normalize(torch.randn(6, 4), dim=-1) for k in "abc"}
    present = {"a": torch.tensor([1, 1, 1, 1, 0, 0], dtype=torch.bool),
               "b": torch.tensor([1, 1, 0, 0, 1, 1], dtype=torch.bool),
               "c": torch.ones(6, dtype=torch.bool)}
    got = align(e, present=present)
    ab = align({"a": e["a"][:2], "b": e["b"][:2]})
    ac = align({"a": e["a"][:4], "c": e["c"][:4]})
    bc = align({"b": e["b"][[0, 1, 4, 5]], "c": e["c"][[0, 1, 4, 5]]})
    assert got.item() == pytest.approx(torch.stack([ab, ac, bc]).mean().item(), rel=1e-6)
    lonely = {"a": torch.tensor([1, 0, 0, 0, 0, 0], dtype=torch.bool), "b": torch.tensor([0, 1, 0, 0, 0, 0], dtype=torch.bool)}
    zero = align({"a": e["a"], "b": e["b"]}, present=lonely)  # no pair has two samples: zero, still differentiable
    assert zero.item() == 0.0 and zero.requires_grad


def test_unlabelled_samples_are_only_their_own_class():
    from autoglm_sdk.trainer import class_ids

    ids = class_ids([{"label": 1}, {}, {"label": 1}, {}])
    assert ids.tolist() == [1, -2, 1, -4]


def test_pretraining_trains_each_encoder_alone_with_shared_prototypes(tmp_path):
    from autoglm_sdk.builder import build
    from autoglm_sdk.manifest import validate_manifest

    manifest = text_pair_manifest(weight=1.0)
    manifest["train"]["pretrain_encoders"] = {"epochs": 2, "stage_epochs": {"encoders.b": 1}, "lr": 0.01,
                                              "lr_scale_after": 0.0}
    report = build(validate_manifest(manifest, allow_import_paths=True), tmp_path / "art").report
    pretrained = report["training"]["pretrain_encoders"]
    assert {k: v["epochs_run"] for k, v in pretrained.items()} == {"encoders.a": 2, "encoders.b": 1}
    assert all(0.0 <= v["best_val_accuracy"] <= 1.0 and len(v["history"]) == v["epochs_run"] for v in pretrained.values())


def test_lr_scale_after_pretraining_sets_encoder_parameter_groups():
    from fixture_plugins import Phrases, PhrasesConfig

    from autoglm_sdk.dag import check_fit, wire
    from autoglm_sdk.manifest import validate_manifest
    from autoglm_sdk.pipeline import build_model
    from autoglm_sdk.trainer import parameter_groups

    manifest = validate_manifest(text_pair_manifest(weight=1.0), allow_import_paths=True)
    data = Phrases(PhrasesConfig()).load()
    dag = wire(manifest)
    model = build_model(manifest, dag, check_fit(manifest, dag, data_port=data.port, task=data.task), data.task)
    for stage in model.stage_objects.values():
        if hasattr(stage, "fit"):  # bert makes its model once its tokenizer has seen the data
            stage.fit(data)
    groups = parameter_groups(model, 0.01, {"encoders.a": 0.0, "encoders.b": 0.1})
    frozen = {id(p) for p in model.stage_objects["encoders.a"].parameters()}
    assert not frozen & {id(p) for g in groups for p in g["params"]}
    assert sorted(g["lr"] for g in groups) == [pytest.approx(0.001), 0.01]


def test_pretraining_names_unknown_stages():
    from autoglm_sdk.dag import wire
    from autoglm_sdk.manifest import validate_manifest

    manifest = text_pair_manifest(weight=1.0)
    manifest["train"]["pretrain_encoders"] = {"stage_epochs": {"encoders.c": 3}}
    with pytest.raises(ManifestError, match=r"stage_epochs: `encoders.c` is not a pretrained encoder stage"):
        wire(validate_manifest(manifest, allow_import_paths=True))
    manifest["train"]["pretrain_encoders"] = {"stages": ["encoders.z"]}
    with pytest.raises(ManifestError, match=r"pretrain_encoders.stages: `encoders.z` is not an encoder stage"):
        wire(validate_manifest(manifest, allow_import_paths=True))
