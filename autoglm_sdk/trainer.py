"""A small supervised trainer: AdamW, minibatches, early stopping on the validation metric."""

from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F

from autoglm_sdk.errors import DataError
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
) -> TrainResult:
    """Train on ``splits['train']``, keep the weights of the best ``splits['val']`` epoch.

    ``progress`` is an object with ``start(total)``, ``advance(metrics)`` and
    ``stop()`` (the CLI passes a rich progress bar); ``on_epoch`` receives the
    epoch number and its metrics (the build forwards them to pluggy hooks).
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
    best_state = copy.deepcopy(model.state_dict())
    best_val, best_epoch, stale = -math.inf, 0, 0
    started = time.perf_counter()
    if progress is not None:
        progress.start(config.epochs)
    try:
        for epoch in range(1, config.epochs + 1):
            model.train()
            loss_sum, count = 0.0, 0
            for chunk in batches(train, config.batch_size, generator):
                optimiser.zero_grad(set_to_none=True)
                with autocast() if autocast else contextlib.nullcontext():
                    pred = model(chunk)
                logits, targets = scored(pred, chunk, task)
                loss = F.cross_entropy(logits.float(), targets)
                loss.backward()
                if config.max_grad_norm:
                    torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
                optimiser.step()
                loss_sum += loss.item() * targets.numel()
                count += targets.numel()
            metrics = {"epoch": epoch, "train_loss": loss_sum / max(count, 1)}
            if val:
                scores = evaluate(model, val, task, config.batch_size, autocast)
                metrics.update(val_accuracy=scores["accuracy"], val_loss=scores["loss"])
                current = scores["accuracy"]
            else:
                current = -metrics["train_loss"]
            result.history.append(metrics)
            if on_epoch:
                on_epoch(epoch, metrics)
            if progress is not None:
                progress.advance(metrics)
            # strictly better only: ties keep the earlier, smaller-trained weights
            if current > best_val:
                best_val, best_epoch, stale = current, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                stale += 1
                if config.patience and stale >= config.patience:
                    result.stopped_early = True
                    break
    finally:
        if progress is not None:
            progress.stop()
    model.load_state_dict(best_state)
    result.best_epoch, result.best_val = best_epoch, best_val if val else float("nan")
    result.seconds = time.perf_counter() - started
    return result
