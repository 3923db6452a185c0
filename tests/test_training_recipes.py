"""Training recipes beyond plain AdamW: transfer (init_from, freeze, layer-wise decay, gradual unfreezing) and
scarce or imbalanced labels (class weights, balanced sampling, logit adjustment, label smoothing, selection on
macro-F1)."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import SMALL

from autoglm_sdk import build, validate_manifest
from autoglm_sdk.errors import AutoGLMError, ManifestError
from autoglm_sdk.objectives import TaskLoss, class_weights, label_counts
from autoglm_sdk.protocols import TaskSpec


def _manifest(**train):
    spec = json.loads(json.dumps(SMALL))
    spec["reasoner"]["layers"] = 3
    spec["train"].update(train)
    return validate_manifest(spec)


def test_class_weights_follow_inverse_frequency_or_the_effective_number():
    counts = torch.tensor([100, 10, 0])
    balanced = class_weights(counts, "balanced")
    assert balanced[2] == 0 and balanced[1] / balanced[0] == pytest.approx(10.0)
    assert float(balanced[:2].mean()) == pytest.approx(1.0)
    effective = class_weights(counts, "effective", beta=0.9)
    # beta 0.9: 100 samples are worth about 10, 10 samples about 6.5
    assert effective[1] / effective[0] == pytest.approx((1 - 0.9**100) / (1 - 0.9**10))
    assert class_weights(counts, "none") is None


def test_label_counts_read_labelled_nodes_or_samples():
    from torch_geometric.data import Data

    task = TaskSpec("node", 3, ("a", "b", "c"))
    graph = Data(y=torch.tensor([0, 0, 1, 2, 2]), label_mask=torch.tensor([True, True, True, False, False]))
    assert label_counts([{"graph": graph}], task).tolist() == [2, 1, 0]
    assert label_counts([{"label": 1}, {"label": 1}, {}], TaskSpec("graph", 2, ("x", "y"))).tolist() == [0, 2]


def test_task_loss_weights_smooths_adjusts_and_balances(monkeypatch):
    from torch_geometric.data import Data

    from autoglm_sdk.pipeline import Prediction

    logits = torch.randn(6, 2, requires_grad=True)
    y = torch.tensor([0, 0, 0, 0, 0, 1])
    pred = Prediction(logits, Data(y=y, label_mask=torch.ones(6, dtype=torch.bool)), {})
    task = TaskSpec("node", 2, ("a", "b"))
    fixed = logits.detach()  # the expected values
    plain = TaskLoss(task).loss(pred, []).item()
    assert plain == pytest.approx(float(torch.nn.functional.cross_entropy(fixed, y)))
    weighted = TaskLoss(task, class_weights=torch.tensor([0.2, 1.8])).loss(pred, []).item()
    expected = torch.nn.functional.cross_entropy(fixed, y, weight=torch.tensor([0.2, 1.8]))
    assert weighted == pytest.approx(float(expected))
    smoothed = TaskLoss(task, label_smoothing=0.2).loss(pred, []).item()
    assert smoothed == pytest.approx(float(torch.nn.functional.cross_entropy(fixed, y, label_smoothing=0.2)))
    prior = torch.log(torch.tensor([5 / 6, 1 / 6]))
    adjusted = TaskLoss(task, log_prior=prior).loss(pred, []).item()
    assert adjusted == pytest.approx(float(torch.nn.functional.cross_entropy(fixed + prior, y)))
    seen = []
    original = torch.multinomial
    monkeypatch.setattr(torch, "multinomial", lambda w, n, replacement: seen.append(w) or original(w, n, replacement))
    TaskLoss(task, balanced=True).loss(pred, [])
    assert seen[0].tolist() == pytest.approx([0.2] * 5 + [1.0])  # the one minority node drawn as often as all five


def test_balanced_sampling_draws_every_class_about_equally():
    from autoglm_sdk.trainer import _Loop

    loop = _Loop.__new__(_Loop)
    loop.config = _manifest(sampling="balanced").train
    loop.task = TaskSpec("graph", 2, ("a", "b"))
    train = [{"label": 0}] * 90 + [{"label": 1}] * 10
    weights = loop.draw_weights(train)
    assert float(weights[:90].sum()) == pytest.approx(float(weights[90:].sum()))


def test_transfer_loads_matching_tensors_freezes_decays_and_unfreezes(tmp_path):
    source = build(_manifest(epochs=5), tmp_path / "source").report
    assert source["training"]["transfer"] is None
    report = build(
        _manifest(epochs=5, init_from=str(tmp_path / "source"), layer_decay=0.5, unfreeze_every=2), tmp_path / "tuned"
    ).report
    transfer = report["training"]["transfer"]
    assert transfer["loaded"] > 0 and not transfer["skipped"] and not transfer["fresh"]
    blocks = report["training"]["blocks"]
    assert [b["block"] for b in blocks] == ["reasoner.convs.0", "reasoner.convs.1", "reasoner.convs.2", "decoder"]
    assert [b["lr"] for b in blocks] == pytest.approx([0.01 * 0.5**3, 0.01 * 0.5**2, 0.01 * 0.5, 0.01])
    assert [b["first_epoch"] for b in blocks] == [None, 5, 3, 1]  # block 3 would start at epoch 7 of 5
    assert [h["trainable_blocks"] for h in report["training"]["history"]] == [1, 1, 2, 2, 3]
    frozen = build(_manifest(epochs=2, freeze=["reasoner"]), tmp_path / "frozen").report
    assert [b["block"] for b in frozen["training"]["blocks"]] == ["decoder"]


def test_init_from_with_another_head_starts_it_fresh_and_says_so(tmp_path):
    build(_manifest(epochs=2), tmp_path / "source")
    spec = json.loads(json.dumps(SMALL))
    spec["reasoner"]["layers"] = 3
    spec["data"]["blocks"] = 4  # four classes: the decoder's output layer no longer fits
    spec["train"].update(epochs=1, init_from=str(tmp_path / "source"))
    transfer = build(validate_manifest(spec), tmp_path / "four").report["training"]["transfer"]
    assert set(transfer["skipped"]) == {"stages.decoder.head.weight", "stages.decoder.head.bias"}
    assert "shape" in transfer["skipped"]["stages.decoder.head.weight"]


def test_init_from_a_checkpoint_and_the_mistakes(tmp_path):
    from autoglm_sdk.session import Session
    from autoglm_sdk.trainer import Checkpointing, fit

    manifest = _manifest(epochs=2)
    session = Session.open(manifest)
    model = session.new_model()
    fit(
        model,
        session.dataset.splits,
        manifest.train,
        session.objectives(model),
        task=session.task,
        checkpoint=Checkpointing(tmp_path / "ckpt", {"x": 1}),
    )
    started = Session.open(_manifest(epochs=1, init_from=str(tmp_path / "ckpt")))
    started.new_model()
    assert started.transfer["loaded"] > 0
    (tmp_path / "empty").mkdir()
    with pytest.raises(AutoGLMError, match="neither a built artifact"):
        Session.open(_manifest(init_from=str(tmp_path / "empty"))).new_model()
    with pytest.raises(ManifestError, match="does not exist"):
        _manifest(init_from=str(tmp_path / "missing"))
    with pytest.raises(ManifestError, match="did you mean `reasoner`"):
        _manifest(freeze=["reasonr"])


def test_selection_on_macro_f1_is_recorded_as_the_validation_score(tmp_path):
    history = build(_manifest(epochs=3, select_on="macro_f1"), tmp_path / "a").report["training"]["history"]
    assert all("val_score" in h for h in history)
