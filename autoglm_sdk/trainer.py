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

from autoglm_sdk.crossmodal import without
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
    labelled = [i for i, s in enumerate(samples) if "label" in s]  # unlabelled samples serve alignment only
    labels = torch.tensor([int(samples[i]["label"]) for i in labelled], dtype=torch.long, device=pred.logits.device)
    if len(labelled) == len(samples):
        return pred.logits, labels
    return pred.logits[torch.tensor(labelled, dtype=torch.long, device=pred.logits.device)], labels


def alignment_loss(model: PipelineModel, pred: Prediction, samples: list[dict[str, Any]]) -> torch.Tensor:
    """The pipeline's contrastive objective over its aligned encoders' embeddings for this batch; each pair
    of encoders compares the samples that carry both modalities."""
    from autoglm_sdk.errors import InputError

    embeddings, present = {}, {}
    for stage in model.aligned_stages:
        out = pred.outputs.get(stage)
        if getattr(out, "embedding", None) is None:
            raise InputError(f"{stage}: train.alignment needs its embedding; set embed_dim on that encoder")
        embeddings[stage] = out.embedding.float()
        if getattr(out, "present", None) is not None:
            present[stage] = out.present
    return model.alignment(embeddings, class_ids(samples, next(iter(embeddings.values())).device), present)


def auxiliary_loss(model: PipelineModel) -> torch.Tensor | None:
    """The sum of the extra objectives stages ask for in training (a stage's ``auxiliary_loss()``, e.g. the
    regularisers of a learned graph), or None when no stage has one."""
    terms = []
    for stage in getattr(model, "stage_objects", {}).values():
        term = stage.auxiliary_loss() if callable(getattr(stage, "auxiliary_loss", None)) else None
        if term is not None:
            terms.append(term)
    return torch.stack(terms).sum() if terms else None


def class_ids(samples: list[dict[str, Any]], device: Any = None) -> torch.Tensor:
    """Each sample's label, or a negative id of its own where it has none (it is then of no class but its own,
    which is what same-class masking and same-class retrieval need)."""
    return torch.tensor([int(s["label"]) if "label" in s else -1 - i for i, s in enumerate(samples)], device=device)


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


def parameter_groups(model: PipelineModel, lr: float, stage_lr_scale: dict[str, float]) -> list[dict[str, Any]]:
    """AdamW parameter groups: the named stages at ``lr * scale`` (left out at scale 0), everything else at ``lr``."""
    scaled = {stage: [p for p in model.stage_objects[stage].parameters() if p.requires_grad] for stage in stage_lr_scale}
    taken = {id(p) for ps in scaled.values() for p in ps}
    groups = [{"params": [p for p in model.parameters() if p.requires_grad and id(p) not in taken], "lr": lr}]
    groups += [{"params": ps, "lr": lr * stage_lr_scale[stage]} for stage, ps in scaled.items()
               if ps and stage_lr_scale[stage] > 0]
    return [g for g in groups if g["params"]]


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
    stage_lr_scale: dict[str, float] | None = None,
    teacher: Any = None,
    distill_weight: float = 0.5,
    temperature: float = 2.0,
) -> TrainResult:
    """Train on ``splits['train']``, keep the weights of the best ``splits['val']`` epoch.

    ``progress`` is an object with ``start(total)``, ``advance(metrics)`` and
    ``stop()`` (the CLI passes a rich progress bar); ``on_epoch`` receives the
    epoch number and its metrics (the build forwards them to pluggy hooks).
    With ``checkpoint`` (a directory), every finished epoch is saved there; with
    ``resume`` as well, training continues after the saved epoch, provided the
    saved ``fingerprint`` (what the training depends on) equals this one.
    ``stage_lr_scale`` multiplies the learning rate of the named stages' parameters (0 freezes them).
    With a ``teacher`` (a frozen pipeline, e.g. the model before pruning), the task loss becomes
    ``(1 - distill_weight) * CE + distill_weight * T² * KL(teacher || student)`` at ``temperature`` T
    (knowledge distillation: the teacher's soft targets carry more than the labels).
    """
    train = splits.get("train") or []
    val = splits.get("val") or []
    if not train:
        raise DataError("the training split is empty", hint="check the data section's split sizes")
    result = TrainResult()
    if config.epochs == 0:
        return result
    generator = torch.Generator().manual_seed(seed)
    groups = parameter_groups(model, config.lr, stage_lr_scale or {})
    params = [p for group in groups for p in group["params"]]
    if not params:
        return result
    optimiser = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
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
                if teacher is not None:
                    loss = (1 - distill_weight) * loss + distill_weight * distillation_loss(
                        logits, teacher, chunk, task, temperature, autocast)
                if getattr(model, "alignment", None) is not None and config.alignment is not None:
                    loss = loss + config.alignment.weight * alignment_loss(model, pred, chunk)
                extra = auxiliary_loss(model)
                if extra is not None:
                    loss = loss + extra
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
                if config.modality_dropout and len(modalities) > 1:
                    # the pipeline is meant to answer from any subset: select on each modality alone and all together
                    alone = [evaluate(model, without(val, set(modalities) - {m}), task, config.batch_size,
                                      autocast)["accuracy"] for m in modalities]
                    current = metrics["val_subset_accuracy"] = (sum(alone) + scores["accuracy"]) / (len(alone) + 1)
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


def distillation_loss(logits: torch.Tensor, teacher: Any, chunk: list[dict[str, Any]], task: TaskSpec,
                      temperature: float, autocast: Any = None) -> torch.Tensor:
    """``T² * KL(teacher || student)`` on softened distributions (Hinton et al.); T² keeps the gradient scale."""
    with torch.no_grad(), autocast() if autocast else contextlib.nullcontext():
        target, _ = scored(teacher(chunk), chunk, task)
    soft = F.log_softmax(target.float() / temperature, -1)
    return temperature ** 2 * F.kl_div(F.log_softmax(logits.float() / temperature, -1), soft, log_target=True,
                                       reduction="batchmean")


@dataclass
class PretrainResult:
    """Per encoder stage: the best probe validation accuracy, its epoch, the epochs run, the seconds
    taken and the history (one row per epoch: mean probe loss and validation accuracy)."""

    stages: dict[str, dict[str, Any]] = field(default_factory=dict)


def pretrain_encoders(
    model: PipelineModel,
    stages: tuple[str, ...],
    splits: dict[str, list[dict[str, Any]]],
    task: TaskSpec,
    config: TrainSection,
    *,
    seed: int = 0,
    autocast: Any = None,
    progress: Any = None,
) -> PretrainResult:
    """Train each encoder in ``stages`` alone, one after the other, to classify samples from its own modality.

    The encoder trains on the samples that carry its modality with a one-cycle
    learning rate for its own number of epochs and keeps the weights of its best
    validation epoch. When every pretrained encoder has a projection head of one
    size, the classifier is shared: one learned prototype per class in the shared
    space, scored by cosine similarity. The first encoder places the prototypes
    and the later ones learn to meet them (they are frozen then), so pretraining
    already aligns the modalities class by class. Otherwise each encoder gets a
    temporary linear probe on its ``pooled`` vector. Either classifier is dropped.
    """
    section = config.pretrain_encoders
    result = PretrainResult()
    if section is None:
        return result
    if task.level != "graph" or task.num_classes < 2:
        raise AutoGLMError("train.pretrain_encoders needs a classification task with one label per sample",
                           hint="remove [train.pretrain_encoders] for node-level tasks")
    sizes = {getattr(getattr(model.stage_objects[s], "config", None), "embed_dim", None) for s in stages}
    prototypes = None
    if section.classifier == "prototypes" and len(sizes) == 1 and None not in sizes:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            prototypes = torch.nn.Parameter(torch.randn(task.num_classes, sizes.pop(),
                                                        device=next(model.parameters()).device))
    for stage in stages:
        epochs = section.stage_epochs.get(stage, section.epochs)
        if epochs:
            result.stages[stage] = _pretrain_one(model, stage, epochs, section.lr or config.lr, splits, task, config,
                                                 prototypes, seed=seed, autocast=autocast, progress=progress)
            if prototypes is not None:
                prototypes.requires_grad_(False)
    return result


#: cosine logits are scaled by this so the softmax can become confident (as in NormFace-style classifiers)
COSINE_SCALE = 16.0


def _pretrain_one(model: PipelineModel, stage: str, epochs: int, lr: float, splits: dict[str, list[dict[str, Any]]],
                  task: TaskSpec, config: TrainSection, prototypes: torch.nn.Parameter | None, *, seed: int,
                  autocast: Any, progress: Any) -> dict[str, Any]:
    port = model.ports.get(stage)
    if port is None or len(port.modalities) != 1:
        raise AutoGLMError(f"train.pretrain_encoders: `{stage}` does not encode exactly one modality")
    (modality,) = port.modalities
    train = [s for s in splits.get("train") or [] if modality in s and "label" in s]
    val = [s for s in splits.get("val") or [] if modality in s and "label" in s]
    if not train:
        raise DataError(f"train.pretrain_encoders: no labelled training sample carries `{modality}` for {stage}")
    encoder = model.stage_objects[stage]
    device = next(model.parameters()).device
    if prototypes is None:
        with torch.no_grad():  # the pooled size: the port's, or one sample's where the static check cannot know it
            dim = port.dim or int(encoder(train[:1]).pooled.size(-1))
        probe: torch.nn.Module = torch.nn.Linear(dim, task.num_classes).to(device)
        head = lambda out: probe(out.pooled)  # noqa: E731
    else:
        probe = torch.nn.ParameterList([prototypes] if prototypes.requires_grad else [])
        head = lambda out: COSINE_SCALE * out.embedding @ F.normalize(prototypes, dim=-1).t()  # noqa: E731
    params = [p for m in (encoder, probe) for p in m.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=lr, total_steps=epochs * math.ceil(len(train) / config.batch_size))
    generator = torch.Generator().manual_seed(seed)

    def probe_loss(chunk: list[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.tensor([int(s["label"]) for s in chunk], device=device)
        with autocast() if autocast else contextlib.nullcontext():
            logits = head(encoder(chunk)).float()
        return F.cross_entropy(logits, labels), (logits.argmax(-1) == labels)

    history: list[dict[str, float]] = []
    best_val, best_epoch, best_state, best_probe = -math.inf, 0, _snapshot(encoder), _snapshot(probe)
    started = time.perf_counter()
    if progress is not None:
        progress.start(epochs, label=f"pretraining {stage}")
    try:
        for epoch in range(1, epochs + 1):
            encoder.train()
            loss_sum = 0.0
            for chunk in batches(train, config.batch_size, generator):
                optimiser.zero_grad(set_to_none=True)
                loss, _ = probe_loss(chunk)
                loss.backward()
                if config.max_grad_norm:
                    torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
                optimiser.step()
                schedule.step()
                loss_sum += loss.item() * len(chunk)
            metrics = {"epoch": epoch, "train_loss": loss_sum / len(train)}
            encoder.eval()
            with torch.no_grad():
                hits = [probe_loss(chunk)[1] for chunk in batches(val, config.batch_size)]
            if hits:
                metrics["val_accuracy"] = float(torch.cat(hits).float().mean())
            current = metrics.get("val_accuracy", -metrics["train_loss"])
            if current > best_val:
                best_val, best_epoch, best_state, best_probe = current, epoch, _snapshot(encoder), _snapshot(probe)
            history.append(metrics)
            if progress is not None:
                progress.advance(metrics)
    finally:
        if progress is not None:
            progress.stop()
    encoder.load_state_dict(best_state)
    probe.load_state_dict(best_probe)  # the shared prototypes too: later encoders meet the best epoch's
    return {"best_val_accuracy": best_val if val else float("nan"), "best_epoch": best_epoch, "epochs_run": epochs,
            "seconds": time.perf_counter() - started, "history": history}


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
