"""The trainer's LR schedule, per-epoch checkpoints and exact `--resume`."""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from helpers import SMALL
from safetensors.torch import load_file
from torch import nn

from autoglm_sdk.artifact import REPORT_MD, WEIGHTS
from autoglm_sdk.builder import build
from autoglm_sdk.errors import AutoGLMError
from autoglm_sdk.hooks import hookimpl, plugin_manager
from autoglm_sdk.manifest import TrainSection, validate_manifest
from autoglm_sdk.objectives import TaskLoss
from autoglm_sdk.protocols import TaskSpec
from autoglm_sdk.session import checkpoint_dir
from autoglm_sdk.trainer import STATE, Checkpointing, fit, lr_schedule, read_checkpoint

TASK = TaskSpec("graph", 2)
FINGERPRINT = {"manifest": "m" * 64, "data": "d" * 64}


class Tiny(nn.Module):
    """Two tied rounds with dropout: shared tensors and RNG use, as in a GNN with shared rounds."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.inner = nn.Linear(4, 4)
        self.rounds = nn.ModuleList([self.inner, self.inner])
        self.out = nn.Linear(4, 2)

    def forward(self, samples):
        x = torch.stack([s["x"] for s in samples])
        for layer in self.rounds:
            x = F.dropout(torch.relu(layer(x)), 0.3, self.training)
        return SimpleNamespace(logits=self.out(x), graph=None)  # all that fit() reads of a Prediction


def splits() -> dict[str, list[dict]]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(60, 4, generator=g)
    samples = [{"x": row, "label": int(row.sum() > 0)} for row in x]
    return {"train": samples[:40], "val": samples[40:]}


def interrupt_at(epoch: int):
    def on_epoch(done: int, metrics: dict) -> None:
        if done == epoch:
            raise KeyboardInterrupt

    return on_epoch


CONFIG = TrainSection(epochs=8, lr=0.05, batch_size=8, patience=0, warmup_epochs=2)


@pytest.mark.parametrize(
    "schedule, expected",
    [
        ("constant", [1 / 3, 2 / 3, 1, 1, 1, 1]),
        ("linear", [1 / 3, 2 / 3, 1, 0.75, 0.5, 0.25]),
        ("cosine", [1 / 3, 2 / 3, 1, 0.5 * (1 + math.cos(math.pi / 4)), 0.5, 0.5 * (1 + math.cos(3 * math.pi / 4))]),
    ],
)
def test_lr_schedule_warms_up_then_decays(schedule, expected):
    optimiser = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = lr_schedule(optimiser, TrainSection(epochs=6, schedule=schedule, warmup_epochs=2))
    used = []
    for _ in range(6):
        used.append(optimiser.param_groups[0]["lr"])
        optimiser.step()
        scheduler.step()
    assert used == pytest.approx(expected)


def train(model=None, **options):
    """``fit`` on the small task with the task objective and CONFIG."""
    return fit(model or Tiny(), splits(), CONFIG, [TaskLoss(TASK)], task=TASK, **options)


def test_history_records_the_lr_each_epoch_used():
    config = TrainSection(epochs=5, lr=0.1, batch_size=8, patience=0, schedule="constant", warmup_epochs=2)
    result = fit(Tiny(), splits(), config, [TaskLoss(TASK)], task=TASK)
    assert [h["lr"] for h in result.history] == pytest.approx([0.1 / 3, 0.2 / 3, 0.1, 0.1, 0.1])
    assert result.resumed_from is None


def test_fit_resumes_exactly_from_a_checkpoint(tmp_path):
    reference = Tiny()
    expected = train(reference)
    folder = tmp_path / "ckpt"
    with pytest.raises(KeyboardInterrupt):
        train(checkpoint=Checkpointing(folder, FINGERPRINT), on_epoch=interrupt_at(3))
    assert sorted(p.name for p in folder.iterdir()) == ["epoch-0003", STATE]
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert {p.suffix for p in files} == {".json", ".safetensors"}  # no pickle
    torch.manual_seed(123)  # the checkpoint's RNG state, not whatever came before, drives the dropout
    resumed_model = Tiny()
    resumed = train(resumed_model, checkpoint=Checkpointing(folder, FINGERPRINT, resume=True))
    assert resumed.resumed_from == 3 and expected.best_epoch > 3, "the best weights must come from after the resume"
    assert resumed.history == expected.history and resumed.best_epoch == expected.best_epoch
    a, b = reference.state_dict(), resumed_model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed_model.rounds[0].weight is resumed_model.rounds[1].weight  # still tied after load_model


def test_checkpoint_refuses_another_fingerprint(tmp_path):
    folder = tmp_path / "ckpt"
    with pytest.raises(KeyboardInterrupt):
        train(checkpoint=Checkpointing(folder, FINGERPRINT), on_epoch=interrupt_at(2))
    assert read_checkpoint(folder, FINGERPRINT)["trainer"]["epoch"] == 2
    with pytest.raises(AutoGLMError, match="the data changed since the checkpoint") as caught:
        train(checkpoint=Checkpointing(folder, {**FINGERPRINT, "data": "x"}, resume=True))
    assert caught.value.hint.startswith("rebuild without --resume")
    with pytest.raises(AutoGLMError, match="the manifest and data changed"):
        read_checkpoint(folder, {"manifest": "x", "data": "y"})
    assert read_checkpoint(tmp_path / "none", FINGERPRINT) is None


def test_a_crash_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    import safetensors.torch

    folder = tmp_path / "ckpt"
    with pytest.raises(KeyboardInterrupt):
        train(checkpoint=Checkpointing(folder, FINGERPRINT), on_epoch=interrupt_at(3))
    committed = (folder / STATE).read_text()
    (folder / ".epoch-0009.tmp-killed").mkdir()  # what a killed process leaves behind
    (folder / f".{STATE}.tmp").write_text("{half")
    real = safetensors.torch.save_file

    def fail_on_the_optimizer(tensors, path, *args, **kwargs):
        if path.endswith("optimizer.safetensors"):
            raise KeyboardInterrupt
        return real(tensors, path, *args, **kwargs)

    monkeypatch.setattr(safetensors.torch, "save_file", fail_on_the_optimizer)
    with pytest.raises(KeyboardInterrupt):
        train(checkpoint=Checkpointing(folder, FINGERPRINT, resume=True))
    assert (folder / STATE).read_text() == committed and (folder / "epoch-0003").is_dir()
    monkeypatch.undo()
    result = train(checkpoint=Checkpointing(folder, FINGERPRINT, resume=True))
    assert result.resumed_from == 3
    assert sorted(p.name for p in folder.iterdir()) == ["epoch-0008", STATE]  # leftovers cleaned up


# ------------------------------------------------------------------ build


#: SMALL with a warm-up: its best epoch (5) comes after the interrupt, so equal weights prove the resume
WARM = {**SMALL, "train": {**SMALL["train"], "warmup_epochs": 3}}


class Interrupt:
    @hookimpl
    def autoglm_epoch_ended(self, epoch, metrics):
        if epoch == 3:
            raise KeyboardInterrupt


@contextlib.contextmanager
def interrupting():
    """Builds inside raise KeyboardInterrupt after epoch 3, as Ctrl-C would."""
    pm, plugin = plugin_manager(), Interrupt()
    pm.register(plugin)
    try:
        yield
    finally:
        pm.unregister(plugin)


def interrupted_build(manifest: dict, output: Path) -> None:
    with interrupting(), pytest.raises(KeyboardInterrupt):
        build(validate_manifest(manifest), output)


def test_resumed_build_equals_an_uninterrupted_one(tmp_path):
    expected = build(validate_manifest(WARM), tmp_path / "reference")
    out = tmp_path / "art"
    interrupted_build(WARM, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art.checkpoint", "reference"]
    assert read_checkpoint(checkpoint_dir(out))["trainer"]["epoch"] == 3
    notes = []
    resumed = build(validate_manifest(WARM), out, resume=True, log=notes.append)
    assert f"resuming after epoch 3 from {checkpoint_dir(out)}" in notes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art", "reference"]  # checkpoint removed
    training, reference = resumed.report["training"], expected.report["training"]
    assert training["resumed_from_epoch"] == 3 and reference["resumed_from_epoch"] is None
    assert reference["best_epoch"] > 3
    assert training["history"] == reference["history"] and "lr" in training["history"][0]
    assert resumed.report["metrics"] == expected.report["metrics"]
    a, b = load_file(str(expected.path / WEIGHTS)), load_file(str(out / WEIGHTS))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((out / "report.json").read_text())["training"]["resumed_from_epoch"] == 3
    assert "Resumed from the checkpoint after epoch 3." in (out / REPORT_MD).read_text()


def test_cli_interrupt_note_refusal_and_discard(small_manifest, tmp_path, capsys):
    from autoglm_cli.app import main

    out = tmp_path / "art"
    with interrupting():
        assert main(["build", str(small_manifest), "-o", str(out), "-q", "--set", "train.epochs=5"]) == 130
    assert (
        f"interrupted: no artifact was written; `autoglm build {small_manifest} -o {out} --set train.epochs=5 "
        "--resume` continues from epoch 4"
    ) in capsys.readouterr().err
    assert not out.exists() and checkpoint_dir(out).is_dir()

    assert main(["build", str(small_manifest), "-o", str(out), "--resume", "--set", "train.epochs=6"]) == 2
    err = capsys.readouterr().err
    assert "error: the manifest changed since the checkpoint" in err and "hint: rebuild without --resume" in err
    assert "(train.epochs: 5 -> 6)" in err  # what changed, not only that something did

    assert main(["build", str(small_manifest), "-o", str(out), "--set", "train.epochs=6"]) == 0
    captured = capsys.readouterr()
    assert f"discarding the checkpoint in {checkpoint_dir(out)}" in captured.err and f"built {out}" in captured.out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art", "small.toml"]


def test_restarts_keep_the_best_validation_run(tmp_path):
    from helpers import SMALL

    from autoglm_sdk.builder import build
    from autoglm_sdk.manifest import validate_manifest

    manifest = validate_manifest({**SMALL, "train": {"epochs": 4, "restarts": 3}})
    report = build(manifest, tmp_path / "art").report
    runs = report["training"]["restarts"]
    assert [r["seed"] for r in runs] == [0, 1, 2]
    best = max(r["best_val_accuracy"] for r in runs)
    chosen = runs[report["training"]["chosen_restart"]]
    assert chosen["best_val_accuracy"] == best
    assert report["metrics"]["val"]["accuracy"] == pytest.approx(best)
    assert not (tmp_path / "art.checkpoint").exists()


def test_an_ensemble_of_restarts_answers_with_their_mean_probability(tmp_path):
    from autoglm_sdk import load
    from autoglm_sdk.session import Session

    manifest = validate_manifest({**SMALL, "train": {"epochs": 4, "restarts": 3, "keep": "ensemble"}})
    report = build(manifest, tmp_path / "art").report
    stored = load_file(str(tmp_path / "art" / WEIGHTS))
    assert {k.split(".")[2] for k in stored if k.startswith("members.")} == {"reasoner", "decoder"}
    assert {k.split(".")[1] for k in stored if k.startswith("members.")} == {"0", "1"}  # the two other restarts
    model = load(tmp_path / "art").model
    samples = Session.open(manifest).splits["val"]
    with torch.no_grad():
        mixed = model(samples).logits.softmax(-1)
        members, stages = model.members, model.stage_objects
        model.members = nn.ModuleList()
        alone = [model(samples).logits.softmax(-1)]
        for member in members:
            model.stage_objects = {**stages, **{k: member[k] for k in ("reasoner", "decoder")}}
            alone.append(model(samples).logits.softmax(-1))
        model.stage_objects, model.members = stages, members
    assert torch.allclose(mixed, torch.stack(alone).mean(0), atol=1e-5)
    assert not all(torch.allclose(alone[0], a) for a in alone[1:])  # three models, not one three times
    assert report["metrics"]["val"]["accuracy"] == pytest.approx(
        float((mixed.argmax(-1) == samples[0]["graph"].y)[samples[0]["graph"].label_mask].float().mean()), abs=1e-6
    )
