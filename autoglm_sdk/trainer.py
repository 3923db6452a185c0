"""A small trainer: AdamW on a weighted list of objectives, a per-epoch LR schedule, minibatches, early stopping
on the validation metric, and a checkpoint after every epoch that a later build can resume from exactly."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from autoglm_sdk import distributed
from autoglm_sdk.errors import AutoGLMError, DataError
from autoglm_sdk.manifest import TrainSection
from autoglm_sdk.objectives import objective_terms, scored
from autoglm_sdk.pipeline import PipelineModel
from autoglm_sdk.protocols import TaskSpec


@dataclass
class TrainResult:
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_val: float = float("nan")
    stopped_early: bool = False
    seconds: float = 0.0
    resumed_from: int | None = None  # the checkpointed epoch training continued after
    blocks: list[dict[str, Any]] = field(default_factory=list)  # which parameters trained when (block_report)


@dataclass
class Checkpointing:
    """Save every finished epoch in ``folder``; with ``resume``, continue after the saved one, provided the saved
    ``fingerprint`` (what the training depends on: manifest, data) equals this one."""

    folder: Path
    fingerprint: dict[str, Any]
    resume: bool = False


class Batches(Sequence):
    """Batches of samples, made when read: a split of neighbour-sampled subgraphs (:mod:`autoglm_sdk.sampling`)
    then holds one batch's subgraphs at a time, not an epoch's."""

    def __init__(self, samples: Sequence[Any], order: list[int], size: int) -> None:
        self.samples, self.order, self.size = samples, order, size

    def __len__(self) -> int:
        return math.ceil(len(self.order) / self.size)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        index %= len(self)
        return [self.samples[i] for i in self.order[index * self.size : (index + 1) * self.size]]


def batches(
    samples: Sequence[Any], size: int, generator: torch.Generator | None = None, weights: torch.Tensor | None = None
) -> Batches:
    """``samples`` in batches of ``size``: in order, shuffled (``generator``), or drawn with replacement in
    proportion to ``weights`` (one epoch's worth)."""
    if weights is not None:
        order = torch.multinomial(weights, len(samples), replacement=True, generator=generator).tolist()
    elif generator is not None:
        order = torch.randperm(len(samples), generator=generator).tolist()
    else:
        order = list(range(len(samples)))
    return Batches(samples, order, size)


@torch.no_grad()
def evaluate(
    model: PipelineModel,
    samples: list[dict[str, Any]],
    task: TaskSpec,
    batch_size: int,
    autocast: Any = None,
    group_key: str | None = None,
    generate: bool = False,
) -> dict[str, Any]:
    """Accuracy, mean cross-entropy and the confusion matrix (rows: truth) over ``samples``.

    With ``group_key`` (graph-level tasks), ``groups`` breaks accuracy down by
    that sample key, e.g. by the number of reasoning hops. A sample the pipeline abstains on
    (:meth:`~autoglm_sdk.pipeline.PipelineModel.abstentions`) counts as wrong, is left out of the confusion
    matrix and is counted in ``abstained``. A text task is scored by :func:`~autoglm_sdk.textgen.evaluate_text`
    (teacher-forced; with ``generate``, on generated text too).
    """
    if task.textual:
        from autoglm_sdk.textgen import evaluate_text

        return evaluate_text(model, samples, task, batch_size, autocast, group_key, generate=generate)
    model.eval()
    correct = total = abstained = 0
    truths: list[int] = []
    answers: list[int] = []  # -1 where the pipeline abstained
    loss_sum = 0.0
    confusion = torch.zeros(task.num_classes, task.num_classes, dtype=torch.long)
    groups: dict[str, list[int]] = {}
    for chunk in batches(samples, batch_size):
        with autocast() if autocast else contextlib.nullcontext():
            pred = model(chunk)
        logits, targets = scored(pred, chunk, task)
        if targets.numel() == 0:
            continue
        guesses = logits.argmax(-1)
        loss_sum += float(F.cross_entropy(logits.float(), targets, reduction="sum"))
        hits = (guesses == targets).long()
        answered = torch.ones_like(hits, dtype=torch.bool)
        if task.level == "graph" and hasattr(model, "abstentions"):  # a bare module (tests, searchers) never abstains
            reasons = [r for r, s in zip(model.abstentions(pred), chunk) if "label" in s]
            answered = torch.tensor([r is None for r in reasons], device=hits.device)
            hits = hits * answered
            abstained += int((~answered).sum())
        correct += int(hits.sum())
        total += targets.numel()
        kept = answered.cpu()
        truths += targets.cpu().tolist()
        answers += torch.where(kept, guesses.cpu(), -1).tolist()
        confusion.index_put_(
            (targets.cpu()[kept], guesses.cpu()[kept]), torch.ones_like(targets.cpu()[kept]), accumulate=True
        )
        if group_key and task.level == "graph":
            for sample, hit in zip(chunk, hits.tolist()):
                tally = groups.setdefault(str(sample.get(group_key)), [0, 0])
                tally[0] += hit
                tally[1] += 1
    if total == 0:
        return {"accuracy": float("nan"), "loss": float("nan"), "count": 0}
    result: dict[str, Any] = {
        "accuracy": correct / total,
        "loss": loss_sum / total,
        "count": total,
        "abstained": abstained,
        "confusion": confusion.tolist(),
        **per_class(truths, answers, task),
    }
    if groups:
        order = sorted(groups, key=lambda g: (len(g), g))  # "2" < "10" for numeric groups
        result["groups"] = {g: {"accuracy": groups[g][0] / groups[g][1], "count": groups[g][1]} for g in order}
    return result


def per_class(truths: list[int], answers: list[int], task: TaskSpec) -> dict[str, Any]:
    """Precision, recall, F1 and support per class, and macro F1 (scikit-learn); an abstention (-1) is a miss."""
    from sklearn.metrics import precision_recall_fscore_support

    labels = list(range(task.num_classes))
    precision, recall, f1, support = precision_recall_fscore_support(truths, answers, labels=labels, zero_division=0)
    rows = zip(labels, precision.tolist(), recall.tolist(), f1.tolist(), support.tolist())
    classes = {task.label_name(i): {"precision": p, "recall": r, "f1": f, "support": n} for i, p, r, f, n in rows}
    present = [c["f1"] for c in classes.values() if c["support"]]
    return {"per_class": classes, "macro_f1": sum(present) / len(present) if present else float("nan")}


def parameter_groups(model: PipelineModel, config: TrainSection, stage_lr_scale: dict[str, float]) -> list[dict]:
    """AdamW parameter groups, one per block of :func:`~autoglm_sdk.transfer.blocks`: ``lr`` times the stage's
    scale (a stage at scale 0 is left out) times ``layer_decay`` to the block's distance from the output, and the
    epoch it starts training (``unfreeze_every``); parameters of no stage (objectives' heads, a bare module's)
    train at ``lr`` in block ``other``."""
    from autoglm_sdk.transfer import blocks, first_epoch

    every = blocks(model)
    found = [b for b in every if stage_lr_scale.get(b[0], 1.0) > 0]
    taken = {id(p) for _, _, params in every for p in params}
    groups = []
    for depth, (stage, block, params) in enumerate(reversed(found)):
        lr = config.lr * stage_lr_scale.get(stage, 1.0) * config.layer_decay**depth
        groups.append(
            {"params": params, "lr": lr, "block": block, "first_epoch": first_epoch(depth, config.unfreeze_every)}
        )
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in taken]
    if rest:
        groups.append({"params": rest, "lr": config.lr, "block": "other", "first_epoch": 1})
    return groups[::-1]


def block_report(groups: list[dict], epochs_run: int) -> list[dict[str, Any]]:
    """Which parameters trained when: each block's size, learning rate and first epoch (None: never reached)."""
    return [
        {
            "block": g["block"],
            "parameters": sum(p.numel() for p in g["params"]),
            "lr": g["initial_lr"] if "initial_lr" in g else g["lr"],
            "first_epoch": g["first_epoch"] if g["first_epoch"] <= epochs_run else None,
        }
        for g in groups
    ]


def lr_schedule(optimiser: torch.optim.Optimizer, config: TrainSection) -> torch.optim.lr_scheduler.LRScheduler:
    """``[train]``'s learning-rate schedule from torch's schedulers, stepped once per epoch: linear warm-up
    (warm-up epoch k of w uses lr * k / (w + 1)), then cosine, linear or no decay over the remaining epochs
    (the last epoch still learns)."""
    from torch.optim import lr_scheduler

    warmup = config.warmup_epochs
    decay = max(config.epochs - warmup, 1)
    if config.schedule == "cosine":
        after: lr_scheduler.LRScheduler = lr_scheduler.CosineAnnealingLR(optimiser, T_max=decay)
    elif config.schedule == "linear":
        after = lr_scheduler.LinearLR(optimiser, start_factor=1.0, end_factor=0.0, total_iters=decay)
    else:
        after = lr_scheduler.ConstantLR(optimiser, factor=1.0, total_iters=0)
    if not warmup:
        return after
    ramp = lr_scheduler.LinearLR(optimiser, start_factor=1 / (warmup + 1), end_factor=1.0, total_iters=warmup)
    return lr_scheduler.SequentialLR(optimiser, [ramp, after], milestones=[warmup])


class TrainStep(torch.nn.Module):
    """One step's forward: the pipeline on a batch, then the weighted objectives. It is the module DDP wraps, so
    that every parameter a loss term reaches (an objective's own head too) is in the graph DDP follows."""

    def __init__(self, model: PipelineModel, objectives: list[Any]) -> None:
        super().__init__()
        self.model = model
        self.terms = objectives

    def forward(self, batch: list[dict[str, Any]]) -> tuple[torch.Tensor, dict[str, float]]:
        return objective_terms(self.terms, self.model(batch), batch)


@dataclass
class _Loop:
    """What one training run carries from epoch to epoch."""

    model: PipelineModel
    config: TrainSection
    objectives: list[Any]
    task: TaskSpec
    autocast: Any
    optimiser: torch.optim.Optimizer
    scheduler: Any
    generator: torch.Generator
    params: list[torch.nn.Parameter]
    result: TrainResult
    best_state: dict[str, torch.Tensor]
    stale: int = 0  # epochs since the best one
    done: int = 0  # epochs finished before this run (a resumed checkpoint's)
    step: Any = None  # TrainStep, in DDP when several processes train together

    def __post_init__(self) -> None:
        self.step = TrainStep(self.model, self.objectives)
        if distributed.active():
            self.step = distributed.wrap(self.step)

    def draw_weights(self, train: list[dict[str, Any]]) -> torch.Tensor | None:
        """Class-balanced sampling of a graph task's samples: each sample weighs 1 / its class's count (unlabelled
        samples weigh as an average class). Node tasks balance the labelled nodes in the task loss instead."""
        if self.config.sampling != "balanced" or self.task.level == "node" or self.task.textual:
            return None
        labels = [int(s["label"]) if "label" in s else -1 for s in train]
        counts = torch.bincount(torch.tensor([y for y in labels if y >= 0] or [0]), minlength=self.task.num_classes)
        per_class = 1.0 / counts.clamp_min(1).double()
        average = float(per_class[counts > 0].mean()) if bool((counts > 0).any()) else 1.0
        return torch.tensor([float(per_class[y]) if y >= 0 else average for y in labels])

    def unfreeze(self, epoch: int) -> None:
        """Gradual unfreezing: the blocks that train in ``epoch``. DDP follows only the parameters that needed
        gradients when it was made, so a changed set is wrapped again."""
        from autoglm_sdk.transfer import set_trainable

        if set_trainable(self.optimiser.param_groups, epoch) and distributed.active():
            self.step = distributed.wrap(TrainStep(self.model, self.objectives))

    def context(self) -> Any:
        return self.autocast() if self.autocast else contextlib.nullcontext()

    def train_epoch(self, train: list[dict[str, Any]]) -> dict[str, float]:
        """One pass over ``train``; the mean weighted loss and each objective's mean value."""
        self.model.train()
        sums: dict[str, float] = {}
        total, count = 0.0, 0
        for chunk in batches(train, self.config.batch_size, self.generator, self.draw_weights(train)):
            for objective in self.objectives:  # e.g. modality dropout: the batch an objective wants trained on
                if hasattr(objective, "prepare_batch"):
                    chunk = objective.prepare_batch(chunk, self.generator)
            mine, weight = distributed.share(chunk) if distributed.active() else (chunk, 1.0)
            self.optimiser.zero_grad(set_to_none=True)
            with self.context():
                loss, values = self.step(mine)
            (loss * weight if weight != 1.0 else loss).backward()
            if self.config.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(self.params, self.config.max_grad_norm)
            self.optimiser.step()
            seen = len(mine) if weight else 0
            total += loss.item() * seen
            count += seen
            for name, value in values.items():
                sums[name] = sums.get(name, 0.0) + value * seen
        if distributed.active():  # the epoch's figures over every rank's share
            names = sorted(sums)
            total, count, *summed = distributed.all_sum([total, count, *(sums[n] for n in names)])
            sums = dict(zip(names, summed))
        self.scheduler.step()
        return {"train_loss": total / max(count, 1), **{f"loss/{k}": v / max(count, 1) for k, v in sums.items()}}

    def validate(self, val: list[dict[str, Any]], metrics: dict[str, Any]) -> float:
        """Validation figures into ``metrics``; returns the score the best epoch is chosen on: accuracy, or what
        an objective with ``validation_score(accuracy_of, val, accuracy)`` makes of it (``val_score``). A text
        task generates for the validation split and is chosen on its ``score`` (see
        :func:`~autoglm_sdk.textgen.text_scores`): a few answer words among many tokens barely move a
        teacher-forced token accuracy."""
        if not val:
            return -metrics["train_loss"]
        text = self.task.textual
        scores = evaluate(self.model, val, self.task, self.config.batch_size, self.autocast, generate=text)
        metrics.update(val_accuracy=scores["accuracy"], val_loss=scores["loss"])
        score = scores["accuracy"]
        if self.config.select_on == "macro_f1" and "macro_f1" in scores:
            score = metrics["val_score"] = scores["macro_f1"]
        if text:
            score = metrics["val_score"] = scores["score"]
        for objective in self.objectives:
            if hasattr(objective, "validation_score"):
                score = metrics["val_score"] = objective.validation_score(self.accuracy_of, val, scores["accuracy"])
        return score

    def epoch(self, epoch: int, train: list[dict[str, Any]], val: list[dict[str, Any]]) -> dict[str, Any]:
        """Train one epoch, validate, keep the weights if they are the best so far; the epoch's metrics."""
        if self.config.unfreeze_every:
            self.unfreeze(epoch)
        metrics: dict[str, Any] = {"epoch": epoch, "lr": max(g["lr"] for g in self.optimiser.param_groups)}
        if self.config.unfreeze_every:
            metrics["trainable_blocks"] = sum(g["first_epoch"] <= epoch for g in self.optimiser.param_groups)
        metrics.update(self.train_epoch(train))
        current = self.validate(val, metrics)
        self.result.history.append(metrics)
        if current > self.result.best_val:  # strictly better only: ties keep the earlier, smaller-trained weights
            self.result.best_val, self.result.best_epoch, self.stale = current, epoch, 0
            self.best_state = snapshot(self.model)
        else:
            self.stale += 1
        self.result.stopped_early = bool(self.config.patience and self.stale >= self.config.patience)
        return metrics

    def save(self, checkpoint: Checkpointing, epoch: int) -> None:
        r = self.result
        state = {
            "epoch": epoch,
            "best_val": r.best_val,
            "best_epoch": r.best_epoch,
            "stale": self.stale,
            "stopped_early": r.stopped_early,
            "history": r.history,
        }
        save_checkpoint(
            checkpoint.folder,
            state,
            checkpoint.fingerprint,
            self.model,
            self.best_state,
            self.optimiser,
            self.scheduler,
            self.generator,
        )

    def resume(self, checkpoint: Checkpointing) -> None:
        """Continue from the checkpoint's last epoch, if there is one (refused when its fingerprint differs)."""
        saved = read_checkpoint(checkpoint.folder, checkpoint.fingerprint)
        if saved is None:
            return
        self.best_state = _restore(checkpoint.folder, saved, self.model, self.optimiser, self.scheduler, self.generator)
        state, r = saved["trainer"], self.result
        self.done = r.resumed_from = state["epoch"]
        r.history, r.best_val, r.best_epoch = state["history"], state["best_val"], state["best_epoch"]
        self.stale, r.stopped_early = state["stale"], state["stopped_early"]

    def accuracy_of(self, samples: list[dict[str, Any]]) -> float:
        return evaluate(self.model, samples, self.task, self.config.batch_size, self.autocast)["accuracy"]


def fit(
    model: PipelineModel,
    splits: dict[str, list[dict[str, Any]]],
    config: TrainSection,
    objectives: list[Any],
    *,
    task: TaskSpec,
    seed: int = 0,
    autocast: Any = None,
    progress: Any = None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    checkpoint: Checkpointing | None = None,
    lr_scales: dict[str, float] | None = None,
) -> TrainResult:
    """Minimise the weighted sum of ``objectives`` on ``splits['train']``; keep the best ``splits['val']`` epoch.

    ``progress`` is an object with ``start(total)``, ``advance(metrics)`` and
    ``stop()`` (the CLI passes a rich progress bar); ``on_epoch`` receives the
    epoch number and its metrics (the build forwards them to pluggy hooks).
    ``lr_scales`` multiplies the learning rate of the named stages' parameters (0 freezes them).
    Each epoch's metrics hold ``train_loss`` (the weighted sum) and ``loss/NAME`` per objective.
    """
    train, val = splits.get("train") or [], splits.get("val") or []
    if not train:
        raise DataError("the training split is empty", hint="check the data section's split sizes")
    groups = parameter_groups(model, config, lr_scales or {})
    if config.epochs == 0 or not groups:
        return TrainResult()
    optimiser = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = lr_schedule(optimiser, config)
    params = [p for group in groups for p in group["params"]]
    loop = _Loop(
        model,
        config,
        objectives,
        task,
        autocast,
        optimiser,
        scheduler,
        torch.Generator().manual_seed(seed),
        params,
        TrainResult(best_val=-math.inf),
        snapshot(model),
    )
    if checkpoint is not None and checkpoint.resume:
        loop.resume(checkpoint)
    started = time.perf_counter()
    if progress is not None:
        progress.start(config.epochs)
        for metrics in loop.result.history:  # a resumed bar starts where the interrupted one stopped
            progress.advance(metrics)
    try:
        for epoch in [] if loop.result.stopped_early else range(loop.done + 1, config.epochs + 1):
            metrics = loop.epoch(epoch, train, val)
            if checkpoint is not None and distributed.is_main():  # before the hooks: an interrupt loses nothing
                loop.save(checkpoint, epoch)
            if on_epoch:
                on_epoch(epoch, metrics)
            if progress is not None:
                progress.advance(metrics)
            if loop.result.stopped_early:
                break
    finally:
        if progress is not None:
            progress.stop()
    model.load_state_dict(loop.best_state)
    if config.unfreeze_every:  # every block trainable again, as the model was given
        for group in optimiser.param_groups:
            for p in group["params"]:
                p.requires_grad_(True)
    loop.result.blocks = block_report(optimiser.param_groups, len(loop.result.history))
    if not val:
        loop.result.best_val = float("nan")
    loop.result.seconds = time.perf_counter() - started
    return loop.result


def fit_alone(
    modules: list[torch.nn.Module],
    step: Callable[[list[dict[str, Any]]], tuple[torch.Tensor, torch.Tensor]],
    train: list[dict[str, Any]],
    val: list[dict[str, Any]],
    config: TrainSection,
    *,
    epochs: int,
    lr: float,
    seed: int,
    progress: Any = None,
    label: str = "pretraining",
) -> dict[str, Any]:
    """Train ``modules`` alone, before the pipeline trains (an objective's ``pretrain``): AdamW with a one-cycle
    learning rate, ``config``'s batch size, weight decay and clipping. ``step(batch)`` returns the batch's loss and
    each sample's hit (bool); the modules end with the weights of the best validation epoch (the lowest training
    loss where ``val`` is empty). Returns ``best_val_accuracy``, ``best_epoch``, ``epochs_run``, ``seconds`` and
    ``history`` (per epoch: mean training loss, validation accuracy)."""
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    if not params or not train:
        raise AutoGLMError(f"{label}: nothing to train (no trainable parameters or no training samples)")
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=lr, total_steps=epochs * math.ceil(len(train) / config.batch_size)
    )
    generator = torch.Generator().manual_seed(seed)
    keep = lambda: [snapshot(m) for m in modules]  # noqa: E731
    history: list[dict[str, float]] = []
    best_val, best_epoch, best_states = -math.inf, 0, keep()
    started = time.perf_counter()
    if progress is not None:
        progress.start(epochs, label=label)
    try:
        for epoch in range(1, epochs + 1):
            for m in modules:
                m.train()
            loss_sum = 0.0
            for chunk in batches(train, config.batch_size, generator):
                optimiser.zero_grad(set_to_none=True)
                loss, _ = step(chunk)
                loss.backward()
                if config.max_grad_norm:
                    torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
                optimiser.step()
                schedule.step()
                loss_sum += loss.item() * len(chunk)
            metrics = {"epoch": epoch, "train_loss": loss_sum / len(train)}
            for m in modules:
                m.eval()
            with torch.no_grad():
                hits = [step(chunk)[1] for chunk in batches(val, config.batch_size)]
            if hits:
                metrics["val_accuracy"] = float(torch.cat(hits).float().mean())
            current = metrics.get("val_accuracy", -metrics["train_loss"])
            if current > best_val:
                best_val, best_epoch, best_states = current, epoch, keep()
            history.append(metrics)
            if progress is not None:
                progress.advance(metrics)
    finally:
        if progress is not None:
            progress.stop()
    for m, state in zip(modules, best_states):
        m.load_state_dict(state)
    return {
        "best_val_accuracy": best_val if val else float("nan"),
        "best_epoch": best_epoch,
        "epochs_run": epochs,
        "seconds": time.perf_counter() - started,
        "history": history,
    }


# ---------------------------------------------------------------------------
# checkpoints
#
#   state.json        the commit record: fingerprint, trainer state, AdamW scalars and
#                     param_groups, LR scheduler state, and the name of the tensor folder
#   epoch-NNNN/       model.safetensors (save_model: shared tensors once), best.safetensors,
#                     optimizer.safetensors ("<param index>.<name>"), rng.safetensors
#
# Only JSON and safetensors: no pickle, so resuming runs no code from the checkpoint.

STATE = "state.json"


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    # independent contiguous copies: save_file refuses tensors that share memory (tied GNN rounds)
    return {k: v.detach().clone(memory_format=torch.contiguous_format) for k, v in model.state_dict().items()}


def save_checkpoint(
    folder: Path,
    trainer_state: dict[str, Any],
    fingerprint: dict[str, Any],
    model: torch.nn.Module,
    best_state: dict[str, torch.Tensor],
    optimiser: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generator: torch.Generator,
) -> None:
    """Save one finished epoch into ``folder``.

    The tensors go to a hidden temporary folder renamed to ``epoch-NNNN``, then
    ``state.json`` is replaced to point at it, then the previous epoch's folder
    is removed: a crash at any moment leaves the previous checkpoint usable.
    """
    from safetensors.torch import save_file, save_model

    folder.mkdir(parents=True, exist_ok=True)
    tensors = folder / f"epoch-{trainer_state['epoch']:04d}"
    optimiser_state = optimiser.state_dict()
    moments, scalars = {}, {}
    for index, values in optimiser_state["state"].items():
        for name, value in values.items():
            (moments if torch.is_tensor(value) else scalars)[f"{index}.{name}"] = value
    tmp = Path(tempfile.mkdtemp(prefix=f".{tensors.name}.tmp-", dir=folder))
    try:
        save_model(model, str(tmp / "model.safetensors"))
        save_file(best_state, str(tmp / "best.safetensors"))
        save_file(moments, str(tmp / "optimizer.safetensors"))
        save_file({"torch": torch.get_rng_state(), "generator": generator.get_state()}, str(tmp / "rng.safetensors"))
        shutil.rmtree(tensors, ignore_errors=True)  # written by a crashed build but never committed
        os.replace(tmp, tensors)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    state = {
        "fingerprint": fingerprint,
        "tensors": tensors.name,
        "trainer": trainer_state,
        "optimizer": {"scalars": scalars, "param_groups": optimiser_state["param_groups"]},
        "scheduler": scheduler.state_dict(),
    }
    (folder / f".{STATE}.tmp").write_text(json.dumps(state))
    os.replace(folder / f".{STATE}.tmp", folder / STATE)
    for old in list(folder.iterdir()):  # the previous epoch, and leftovers of a crashed save
        if old.name in (STATE, tensors.name):
            continue
        if old.is_dir():
            shutil.rmtree(old)
        else:
            old.unlink()


def read_checkpoint(folder: Path, fingerprint: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The committed ``state.json`` of a checkpoint folder, or None when there is none.

    With ``fingerprint``, a checkpoint saved with another one is refused, naming what changed.
    """
    path = Path(folder) / STATE
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
    except ValueError as exc:
        raise AutoGLMError(f"{path}: corrupt checkpoint: {exc}", hint="rebuild without --resume") from exc
    changed = [key for key in fingerprint or {} if state["fingerprint"].get(key) != fingerprint[key]]
    if changed:
        details = _differences(state["fingerprint"].get("manifest"), (fingerprint or {}).get("manifest"))
        raise AutoGLMError(
            f"the {' and '.join(changed)} changed since the checkpoint in {folder}"
            + (f" ({'; '.join(details[:5])})" if details else ""),
            hint="rebuild without --resume (that discards the checkpoint)",
        )
    return state


def _differences(before: Any, after: Any, prefix: str = "") -> list[str]:
    """``key: old -> new`` for every manifest value that differs (both dicts), else nothing to say."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return [f"{prefix.rstrip('.')}: {before!r} -> {after!r}"] if prefix and before != after else []
    out = []
    for key in sorted(set(before) | set(after)):
        out += _differences(before.get(key), after.get(key), f"{prefix}{key}.")
    return out


def _restore(
    folder: Path,
    state: dict[str, Any],
    model: torch.nn.Module,
    optimiser: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generator: torch.Generator,
) -> dict[str, torch.Tensor]:
    """Load a checkpoint into the training objects; returns the best-so-far weights."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, load_model

    tensors = folder / state["tensors"]
    device = str(next(model.parameters()).device)
    try:
        load_model(model, str(tensors / "model.safetensors"), device=device)
        best = load_file(str(tensors / "best.safetensors"), device=device)
        entries = {**load_file(str(tensors / "optimizer.safetensors")), **state["optimizer"]["scalars"]}
        rng = load_file(str(tensors / "rng.safetensors"))
    except (OSError, RuntimeError, SafetensorError) as exc:
        raise AutoGLMError(f"{tensors}: unreadable checkpoint: {exc}", hint="rebuild without --resume") from exc
    per_param: dict[int, dict[str, Any]] = {}
    for key, value in entries.items():
        index, name = key.split(".", 1)
        per_param.setdefault(int(index), {})[name] = value
    groups = [{**group, "betas": tuple(group["betas"])} for group in state["optimizer"]["param_groups"]]
    optimiser.load_state_dict({"state": per_param, "param_groups": groups})
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(rng["torch"])
    generator.set_state(rng["generator"])
    return best
