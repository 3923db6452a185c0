"""Training objectives for multimodal pipelines: contrastive alignment and encoder pretraining.

Alignment: for embeddings ``a, b [B, E]`` of the same ``B`` samples from two encoders
(L2-normalised), ``logits = exp(t) * a @ b.T`` with a learnable log-temperature
``t`` (initially ``ln(1/0.07)``, clamped at ``ln 100`` as in CLIP), and the loss
is the mean of cross-entropy along rows and along columns with the diagonal as
the target. With three modalities the loss averages the pairs. A pair compares
only the samples that carry both of its modalities (``present``), so with
modality dropout every pair still sees most of the batch. When the samples
carry labels and ``exclude_same_class`` is set, another sample of the same
class is not treated as a negative: its logit is masked out.

Pretraining: before the pipeline trains, each encoder learns alone to classify
samples of its own modality (see :class:`EncoderPretraining`).
"""

from __future__ import annotations

import contextlib
import math
from itertools import combinations
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from autoglm_multimodal.specs import AlignmentConfig, ModalityDropoutConfig, PretrainingConfig
from autoglm_sdk.plugin import AutoGLMError, DataError, InputError, class_ids, fit_alone


class ContrastiveAlignment(nn.Module):
    """The alignment objective: its learned temperature trains and is saved with the pipeline."""

    name = "alignment"
    kind = "objective"
    Config = AlignmentConfig

    def __init__(self, config: Any, ctx: Any) -> None:
        super().__init__()
        self.config = config
        self.name, self.weight = ctx.stage, config.weight
        encoders = sorted(k for k in ctx.inputs if k.startswith("encoders."))
        self.stages = tuple(config.stages or encoders)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / config.init_temperature)))
        self.max_log_scale = math.log(config.max_logit_scale)
        self.exclude_same_class = config.exclude_same_class

    def loss(self, pred: Any, batch: list[dict[str, Any]]) -> torch.Tensor:
        """InfoNCE over this batch's embeddings from the aligned encoders; each pair of encoders compares the
        samples that carry both modalities."""
        embeddings, present = {}, {}
        for stage in self.stages:
            out = pred.outputs.get(stage)
            if getattr(out, "embedding", None) is None:
                raise InputError(f"{self.name}: needs the embedding of {stage}; set embed_dim on that encoder")
            embeddings[stage] = out.embedding.float()
            if getattr(out, "present", None) is not None:
                present[stage] = out.present
        return self(embeddings, class_ids(batch, next(iter(embeddings.values())).device), present)

    def forward(
        self,
        embeddings: dict[str, torch.Tensor],
        labels: torch.Tensor | None = None,
        present: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Mean symmetric InfoNCE over every pair of the given embeddings (each ``[B, E]``); ``present``
        (``[B]`` bool per key) limits each pair to the samples that carry both. Pairs with fewer than two
        such samples are skipped; with none left the loss is a zero that still has a gradient path."""
        if len(embeddings) < 2:
            raise ValueError("contrastive alignment needs embeddings from at least two encoders")
        scale = self.logit_scale.clamp(max=self.max_log_scale).exp()
        losses = []
        for first, second in combinations(sorted(embeddings), 2):
            a, b, pair_labels = embeddings[first], embeddings[second], labels
            if present is not None and (first in present or second in present):
                rows = torch.ones(a.size(0), dtype=torch.bool, device=a.device)
                for key in (first, second):
                    if key in present:
                        rows &= present[key].to(a.device)
                a, b = a[rows], b[rows]
                pair_labels = labels[rows] if labels is not None else None
            if a.size(0) < 2:
                continue
            losses.append(self._pair(scale * a @ b.t(), pair_labels))
        if not losses:
            return self.logit_scale * 0.0
        return torch.stack(losses).mean()

    def _pair(self, logits: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        targets = torch.arange(logits.size(0), device=logits.device)
        if labels is not None and self.exclude_same_class:
            same = labels.unsqueeze(0) == labels.unsqueeze(1)
            logits = logits.masked_fill(
                same & ~torch.eye(len(labels), dtype=torch.bool, device=same.device), float("-inf")
            )
        return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets)) / 2


class EncoderPretraining:
    """Train each encoder alone, one after the other, to classify samples from its own modality.

    The encoder trains on the samples that carry its modality with a one-cycle
    learning rate for its own number of epochs and keeps the weights of its best
    validation epoch. When every pretrained encoder has a projection head of one
    size, the classifier is shared: one learned prototype per class in the shared
    space, scored by cosine similarity. The first encoder places the prototypes
    and the later ones learn to meet them (they are frozen then), so pretraining
    already aligns the modalities class by class. Otherwise each encoder gets a
    temporary linear probe on its ``pooled`` vector. Either classifier is dropped.
    It adds no term to the pipeline's loss (weight 0); ``lr_scales`` slows the
    pretrained encoders down while the pipeline trains afterwards.
    """

    name = "encoder-pretraining"
    kind = "objective"
    Config = PretrainingConfig
    weight = 0.0

    def __init__(self, config: Any, ctx: Any) -> None:
        self.config = config
        self.name = ctx.stage or self.name
        encoders = sorted(k for k in ctx.inputs if k.startswith("encoders."))
        self.stages = tuple(config.stages or encoders)
        self.lr_scales = {stage: config.lr_scale_after for stage in self.stages}

    def loss(self, pred: Any, batch: list[dict[str, Any]]) -> None:
        return None

    def pretrain(self, model: Any, session: Any, *, seed: int = 0, progress: Any = None) -> dict[str, Any]:
        """Per encoder stage: the best probe validation accuracy, its epoch, the epochs run, the seconds taken and
        the history (one row per epoch: mean probe loss and validation accuracy)."""
        task, train = session.task, session.manifest.train
        if task.level != "graph" or task.num_classes < 2:
            raise AutoGLMError(
                f"{self.name}: needs a classification task with one label per sample",
                hint="remove it for node-level tasks",
            )
        sizes = {getattr(getattr(model.stage_objects[s], "config", None), "embed_dim", None) for s in self.stages}
        prototypes = None
        if self.config.classifier == "prototypes" and len(sizes) == 1 and None not in sizes:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                prototypes = torch.nn.Parameter(
                    torch.randn(task.num_classes, sizes.pop(), device=next(model.parameters()).device)
                )
        figures: dict[str, Any] = {}
        for stage in self.stages:
            epochs = self.config.stage_epochs.get(stage, self.config.epochs)
            if epochs:
                figures[stage] = _pretrain_one(
                    model,
                    stage,
                    epochs,
                    self.config.lr or train.lr,
                    session.dataset.splits,
                    task,
                    train,
                    prototypes,
                    seed=seed,
                    autocast=session.backend.autocast,
                    progress=progress,
                )
                session.log(
                    f"{stage}: pretrained alone, probe val accuracy "
                    f"{figures[stage]['best_val_accuracy']:.3f} (epoch {figures[stage]['best_epoch']})"
                )
                if prototypes is not None:
                    prototypes.requires_grad_(False)
        return figures


#: cosine logits are scaled by this so the softmax can become confident (as in NormFace-style classifiers)
COSINE_SCALE = 16.0


def _pretrain_one(
    model: Any,
    stage: str,
    epochs: int,
    lr: float,
    splits: dict[str, list[dict[str, Any]]],
    task: Any,
    config: Any,
    prototypes: torch.nn.Parameter | None,
    *,
    seed: int,
    autocast: Any,
    progress: Any,
) -> dict[str, Any]:
    port = model.ports.get(stage)
    if port is None or len(port.modalities) != 1:
        raise AutoGLMError(f"encoder-pretraining: `{stage}` does not encode exactly one modality")
    (modality,) = port.modalities
    train = [s for s in splits.get("train") or [] if modality in s and "label" in s]
    val = [s for s in splits.get("val") or [] if modality in s and "label" in s]
    if not train:
        raise DataError(f"encoder-pretraining: no labelled training sample carries `{modality}` for {stage}")
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

    def probe_step(chunk: list[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.tensor([int(s["label"]) for s in chunk], device=device)
        with autocast() if autocast else contextlib.nullcontext():
            logits = head(encoder(chunk)).float()
        return F.cross_entropy(logits, labels), (logits.argmax(-1) == labels)

    # the shared prototypes are kept at the best epoch too: later encoders meet the best epoch's
    return fit_alone(
        [encoder, probe], probe_step, train, val, config, epochs=epochs, lr=lr, seed=seed, progress=progress,
        label=f"pretraining {stage}",
    )  # fmt: skip


def drop_modalities(
    samples: list[dict[str, Any]], modalities: list[str], rate: float, generator: torch.Generator
) -> list[dict[str, Any]]:
    """Each sample loses each modality with probability ``rate``, keeping at least one."""
    out = []
    for sample in samples:
        drop = (torch.rand(len(modalities), generator=generator) < rate).tolist()
        if all(drop):
            drop[int(torch.randint(len(modalities), (1,), generator=generator))] = False
        out.append({k: v for k, v in sample.items() if k not in {m for m, d in zip(modalities, drop) if d}})
    return out


class ModalityDropout:
    """Training batches lose modalities at random (no loss term of its own: weight 0); the best epoch is chosen on
    the mean validation accuracy from each modality alone and from all together."""

    name = "modality-dropout"
    kind = "objective"
    Config = ModalityDropoutConfig
    weight = 0.0

    def __init__(self, config: Any, ctx: Any) -> None:
        self.config = config
        self.name = ctx.stage or self.name
        data = ctx.inputs.get("data")
        self.modalities = sorted(data.modalities) if data is not None else []

    def loss(self, pred: Any, batch: list[dict[str, Any]]) -> None:
        return None

    def prepare_batch(self, batch: list[dict[str, Any]], generator: torch.Generator) -> list[dict[str, Any]]:
        if len(self.modalities) < 2:
            return batch
        return drop_modalities(batch, self.modalities, self.config.rate, generator)

    def validation_score(self, accuracy_of: Any, val: list[dict[str, Any]], accuracy: float) -> float:
        if not self.config.select_on_subsets or len(self.modalities) < 2:
            return accuracy
        from autoglm_multimodal.crossmodal import without

        alone = [accuracy_of(without(val, set(self.modalities) - {m})) for m in self.modalities]
        return (sum(alone) + accuracy) / (len(alone) + 1)
