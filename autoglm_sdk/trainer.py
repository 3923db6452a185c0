"""A small supervised trainer: AdamW, a per-epoch LR schedule, minibatches, early stopping on the
validation metric, and a checkpoint after every epoch that a later build can resume from exactly."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from autoglm_sdk.errors import AutoGLMError, DataError
from autoglm_sdk.manifest import TrainSection
from autoglm_sdk.pipeline import PipelineModel, Prediction
from autoglm_sdk.protocols import TaskSpec


@dataclass
class TrainResult:
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_val: float = float("nan")
    stopped_early: bool = False
    seconds: float = 0.0
    resumed_from: int | None = None  # the checkpointed epoch training continued after


def scored(pred: Prediction, samples: list[dict[str, Any]], task: TaskSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, targets) restricted to what the split scores."""
    if task.level == "node":
        graph = pred.graph
        mask = getattr(graph, "label_mask", None)
        y = getattr(graph, "y", None)
        if y is None:
            raise DataError("node-level task but the graph reaching the decoder carries no `y`")
        if mask is None:
            mask = torch.ones_like(y, dtype=torch.bool)
        return pred.logits[mask], y[mask]
    labels = torch.tensor([int(s["label"]) for s in samples], dtype=torch.long, device=pred.logits.device)
    return pred.logits, labels


def alignment_loss(model: PipelineModel, pred: Prediction, samples: list[dict[str, Any]]) -> torch.Tensor:
    """The pipeline's contrastive objective over its aligned encoders' embeddings for this batch."""
    from autoglm_sdk.errors import InputError

    embeddings = {}
    for stage in model.aligned_stages:
        out = pred.outputs.get(stage)
        if getattr(out, "embedding", None) is None:
            raise InputError(f"{stage}: train.alignment needs its embedding; set embed_dim on that encoder")
        embeddings[stage] = out.embedding.float()
    device = next(iter(embeddings.values())).device
    both = torch.ones(len(samples), dtype=torch.bool, device=device)
    for stage in model.aligned_stages:  # only samples that carry every aligned modality are pairs
        present = getattr(pred.outputs[stage], "present", None)
        if present is not None:
            both &= present.to(device)
    if int(both.sum()) < 2:
        return next(iter(embeddings.values())).sum() * 0.0
    embeddings = {k: v[both] for k, v in embeddings.items()}
    labels = None
    if samples and all("label" in s for s in samples):
        labels = torch.tensor([int(s["label"]) for s in samples], device=device)[both]
    return model.alignment(embeddings, labels)


def drop_modalities(samples: list[dict[str, Any]], modalities: list[str], rate: float,
                    generator: torch.Generator) -> list[dict[str, Any]]:
    """Each sample loses each modality with probability ``rate``, keeping at least one."""
    out = []
    for sample in samples:
        drop = (torch.rand(len(modalities), generator=generator) < rate).tolist()
        if all(drop):
            drop[int(torch.randint(len(modalities), (1,), generator=generator))] = False
        out.append({k: v for k, v in sample.items() if k not in {m for m, d in zip(modalities, drop) if d}})
    return out


def batches(samples: list[Any], size: int, generator: torch.Generator | None = None) -> list[list[Any]]:
    order = torch.randperm(len(samples), generator=generator).tolist() if generator is not None else range(len(samples))
    ordered = [samples[i] for i in order]
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


@torch.no_grad()
def evaluate(
    model: PipelineModel,
    samples: list[dict[str, Any]],
    task: TaskSpec,
    batch_size: int,
    autocast: Any = None,
    group_key: str | None = None,
) -> dict[str, Any]:
    """Accuracy, mean cross-entropy and the confusion matrix (rows: truth) over ``samples``.

    With ``group_key`` (graph-level tasks), ``groups`` breaks accuracy down by
    that sample key, e.g. by the number of reasoning hops.
    """
    model.eval()
    correct = total = 0
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
        correct += int(hits.sum())
        total += targets.numel()
        confusion.index_put_((targets.cpu(), guesses.cpu()), torch.ones_like(targets.cpu()), accumulate=True)
        if group_key and task.level == "graph":
            for sample, hit in zip(chunk, hits.tolist()):
                tally = groups.setdefault(str(sample.get(group_key)), [0, 0])
                tally[0] += hit
                tally[1] += 1
    if total == 0:
        return {"accuracy": float("nan"), "loss": float("nan"), "count": 0}
    result: dict[str, Any] = {"accuracy": correct / total, "loss": loss_sum / total, "count": total,
                              "confusion": confusion.tolist()}
    if groups:
        order = sorted(groups, key=lambda g: (len(g), g))  # "2" < "10" for numeric groups
        result["groups"] = {g: {"accuracy": groups[g][0] / groups[g][1], "count": groups[g][1]} for g in order}
    return result


def lr_factor(config: TrainSection) -> Callable[[int], float]:
    """LR multiplier for the epoch after ``done`` finished ones: linear warm-up, then the schedule's decay."""
    warmup = config.warmup_epochs
    decay = max(config.epochs - warmup, 1)

    def factor(done: int) -> float:
        if done < warmup:
            return (done + 1) / (warmup + 1)  # never 0: every warm-up epoch learns something
        progress = (done - warmup) / decay  # < 1 on the last epoch, which therefore still learns
        if config.schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * progress))
        if config.schedule == "linear":
            return 1 - progress
        return 1.0

    return factor


def fit(
    model: PipelineModel,
    splits: dict[str, list[dict[str, Any]]],
    task: TaskSpec,
    config: TrainSection,
    *,
    seed: int = 0,
    autocast: Any = None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    progress: Any = None,
    checkpoint: Path | None = None,
    resume: bool = False,
    fingerprint: dict[str, str] | None = None,
    modalities: tuple[str, ...] = (),
) -> TrainResult:
    """Train on ``splits['train']``, keep the weights of the best ``splits['val']`` epoch.

    ``progress`` is an object with ``start(total)``, ``advance(metrics)`` and
    ``stop()`` (the CLI passes a rich progress bar); ``on_epoch`` receives the
    epoch number and its metrics (the build forwards them to pluggy hooks).
    With ``checkpoint`` (a directory), every finished epoch is saved there; with
    ``resume`` as well, training continues after the saved epoch, provided the
    saved ``fingerprint`` (what the training depends on) equals this one.
    """
    train = splits.get("train") or []
    val = splits.get("val") or []
    if not train:
        raise DataError("the training split is empty", hint="check the data section's split sizes")
    result = TrainResult()
    if config.epochs == 0:
        return result
    generator = torch.Generator().manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        return result
    optimiser = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lr_factor(config))
    result.best_val, best_state, stale, done = -math.inf, _snapshot(model), 0, 0
    saved = read_checkpoint(checkpoint, fingerprint) if resume and checkpoint is not None else None
    if saved is not None:
        best_state = _restore(checkpoint, saved, model, optimiser, scheduler, generator)
        state = saved["trainer"]
        done = result.resumed_from = state["epoch"]
        result.history, result.best_val, result.best_epoch = state["history"], state["best_val"], state["best_epoch"]
        stale, result.stopped_early = state["stale"], state["stopped_early"]
    started = time.perf_counter()
    if progress is not None:
        progress.start(config.epochs)
        for metrics in result.history:  # a resumed bar starts where the interrupted one stopped
            progress.advance(metrics)
    try:
        for epoch in [] if result.stopped_early else range(done + 1, config.epochs + 1):
            model.train()
            lr = optimiser.param_groups[0]["lr"]
            loss_sum, count = 0.0, 0
            for chunk in batches(train, config.batch_size, generator):
                if config.modality_dropout and len(modalities) > 1:
                    chunk = drop_modalities(chunk, modalities, config.modality_dropout, generator)
                optimiser.zero_grad(set_to_none=True)
                with autocast() if autocast else contextlib.nullcontext():
                    pred = model(chunk)
                logits, targets = scored(pred, chunk, task)
                loss = config.task_weight * F.cross_entropy(logits.float(), targets)
                if getattr(model, "alignment", None) is not None and config.alignment is not None:
                    loss = loss + config.alignment.weight * alignment_loss(model, pred, chunk)
                loss.backward()
                if config.max_grad_norm:
                    torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
                optimiser.step()
                loss_sum += loss.item() * targets.numel()
                count += targets.numel()
            scheduler.step()
            metrics = {"epoch": epoch, "lr": lr, "train_loss": loss_sum / max(count, 1)}
            if val:
                scores = evaluate(model, val, task, config.batch_size, autocast)
                metrics.update(val_accuracy=scores["accuracy"], val_loss=scores["loss"])
                current = scores["accuracy"]
            else:
                current = -metrics["train_loss"]
            result.history.append(metrics)
            # strictly better only: ties keep the earlier, smaller-trained weights
            if current > result.best_val:
                result.best_val, result.best_epoch, stale = current, epoch, 0
                best_state = _snapshot(model)
            else:
                stale += 1
            result.stopped_early = bool(config.patience and stale >= config.patience)
            if checkpoint is not None:  # before the hooks: an interrupt from here on loses nothing of this epoch
                trainer_state = {"epoch": epoch, "best_val": result.best_val, "best_epoch": result.best_epoch,
                                 "stale": stale, "stopped_early": result.stopped_early, "history": result.history}
                save_checkpoint(checkpoint, trainer_state, fingerprint or {}, model, best_state, optimiser, scheduler,
                                generator)
            if on_epoch:
                on_epoch(epoch, metrics)
            if progress is not None:
                progress.advance(metrics)
            if result.stopped_early:
                break
    finally:
        if progress is not None:
            progress.stop()
    model.load_state_dict(best_state)
    if not val:
        result.best_val = float("nan")
    result.seconds = time.perf_counter() - started
    return result


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


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    # independent contiguous copies: save_file refuses tensors that share memory (tied GNN rounds)
    return {k: v.detach().clone(memory_format=torch.contiguous_format) for k, v in model.state_dict().items()}


def save_checkpoint(
    folder: Path,
    trainer_state: dict[str, Any],
    fingerprint: dict[str, str],
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


def read_checkpoint(folder: Path, fingerprint: dict[str, str] | None = None) -> dict[str, Any] | None:
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
        raise AutoGLMError(
            f"the {' and '.join(changed)} changed since the checkpoint in {folder}",
            hint="rebuild without --resume (that discards the checkpoint)",
        )
    return state


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
