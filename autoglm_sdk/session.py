"""The build session: everything a verb needs from a manifest, resolved once.

``build``, ``search``, ``compress``, ``bench``, ``load`` and ``run`` all start
here. A session resolves the backend (and says what it fell back from), loads
the data once, wires and fit-checks the stages once, and makes models from
seeds; training minimises the session's objectives. Nothing else repeats that
setup, so every verb sees the same backend, data, ports and loss.
"""

from __future__ import annotations

import random
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from autoglm_sdk.dag import Dag, check_fit, wire
from autoglm_sdk.errors import ArtifactError, DataError, InputError
from autoglm_sdk.manifest import Manifest
from autoglm_sdk.protocols import BuildContext, Dataset, Port, TaskSpec

Log = Callable[[str], None]


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class Session:
    """A manifest resolved for running: backend, data, wiring and ports. Make one with :meth:`open` (from a
    manifest: loads and checks the data) or :meth:`for_artifact` (from a built artifact's lock: data on demand)."""

    manifest: Manifest
    backend: Any
    fallbacks: list[Any]
    dag: Dag
    ports: dict[str, Port]
    task: TaskSpec
    log: Log = field(default=lambda message: None, repr=False)
    data_fingerprint: str | None = None  # an artifact's: the data must still match it
    _dataset: Dataset | None = field(default=None, repr=False)
    _fitted: dict[str, tuple[Any, Any, Any, set[str]]] = field(default_factory=dict, repr=False)  # see _fit
    transfer: dict[str, Any] | None = None  # what train.init_from loaded (transfer.load_matching)
    _sampled: dict[str, Any] | None = field(default=None, repr=False)  # see splits

    @classmethod
    def open(cls, manifest: Manifest, *, log: Log | None = None) -> "Session":
        """Resolve the backend, load the data and fit-check the pipeline against the data's real port."""
        log = log or (lambda message: None)
        dag = wire(manifest)  # wiring mistakes before any backend or data work
        backend, fallbacks = _resolve(manifest, log)
        seed_everything(manifest.pipeline.seed)
        started = time.perf_counter()
        log(f"loading data from `{manifest.stages['data'].plugin}` ...")  # generators can take minutes: say so first
        dataset = _load_data(manifest)
        for split in ("train", "val", "test"):
            if not dataset.splits.get(split):
                raise DataError(
                    f"data `{manifest.stages['data'].plugin}` produced an empty `{split}` split",
                    hint="check its split sizes",
                )
        sizes = ", ".join(f"{k}={len(v)}" for k, v in dataset.splits.items())
        log(f"data: {manifest.stages['data'].plugin} {sizes} ({time.perf_counter() - started:.1f}s)")
        task = task_of(manifest, dataset)
        ports = check_fit(manifest, dag, data_port=dataset.port, task=task)
        return cls(manifest, backend, fallbacks, dag, ports, task, log, _dataset=dataset)

    @classmethod
    def for_artifact(
        cls, manifest: Manifest, ports: dict[str, Port], task: TaskSpec, data_fingerprint: str, log: Log | None = None
    ) -> "Session":
        """A built pipeline's session: ports and task as the build recorded them; data loaded only when asked."""
        backend, fallbacks = _resolve(manifest, log or (lambda message: None))
        return cls(
            manifest, backend, fallbacks, wire(manifest), ports, task, log or (lambda message: None), data_fingerprint
        )

    # ------------------------------------------------------------------ data

    @property
    def dataset(self) -> Dataset:
        if self._dataset is None:
            dataset = _load_data(self.manifest)
            if self.data_fingerprint is not None and dataset.fingerprint != self.data_fingerprint:
                raise ArtifactError(
                    f"data `{self.manifest.stages['data'].plugin}` now produces different data than the artifact "
                    "was built on (fingerprint changed)",
                    hint="rebuild the artifact, or pass inputs with --input",
                )
            self._dataset = dataset
        return self._dataset

    @property
    def splits(self) -> dict[str, Any]:
        """What training and evaluation read: the data's splits or, with ``[train] neighbors``, each split's
        labelled nodes in chunks of neighbour-sampled subgraphs (:mod:`autoglm_sdk.sampling`)."""
        train = self.manifest.train
        if not train.neighbors:
            return self.dataset.splits
        if self._sampled is None:
            from autoglm_sdk.sampling import neighbor_splits

            self._sampled = neighbor_splits(self.dataset.splits, train.neighbors, train.seed_nodes, self.seed)
        return self._sampled

    def split(self, name: str) -> list[dict[str, Any]]:
        splits = self.dataset.splits
        if name not in splits:
            raise InputError(f"split `{name}` does not exist; the data source has {sorted(splits)}")
        return splits[name]

    @property
    def seed(self) -> int:
        return self.manifest.pipeline.seed

    @property
    def batch_size(self) -> int:
        return self.manifest.train.batch_size

    # ---------------------------------------------------------------- models

    def new_model(self, seed: int | None = None, *, stage_files: Callable[[str], dict] | None = None) -> Any:
        """A fresh pipeline from ``seed`` (default the manifest's): stages and objectives constructed, fitted to
        the training data (tokenizers, vocabularies) or, for a built artifact, given their stored files
        (``stage_files(stage)``), then placed on their backends."""
        from autoglm_sdk.pipeline import build_model
        from autoglm_sdk.placement import place_stages

        seed = self.seed if seed is None else seed
        # a loaded pipeline answers new inputs: keeping their graphs (the builder cache) would only grow
        model = build_model(
            self.manifest,
            self.dag,
            self.ports,
            self.task,
            device=self.backend.device,
            seed=seed,
            cache=stage_files is None,
        )
        train = self.manifest.train
        start = stage_files is None and train.init_from  # a new pipeline that starts from a trained one
        if start:
            from autoglm_sdk.transfer import source

            tensors, artifact = source(train.init_from)
            if artifact is not None:  # its encoders' vocabularies go with its weights
                from autoglm_sdk.artifact import read_stage_files

                stage_files = lambda key: read_stage_files(artifact, key)  # noqa: E731
        for key, stage in model.stage_objects.items():
            files = stage_files(key) if stage_files is not None else {}
            if files and hasattr(stage, "load_artifact_files"):
                stage.load_artifact_files(files)
            elif (start or stage_files is None) and hasattr(stage, "fit"):  # learned from data before training
                self._fit(key, stage, model)
        if start:
            from autoglm_sdk.transfer import load_matching

            self.transfer = load_matching(model, tensors, str(train.init_from))
            self.log(f"init_from {train.init_from}: {self.transfer['loaded']} tensors loaded")
        if stage_files is None or start:
            from autoglm_sdk.transfer import freeze

            freeze(model, train.freeze)
        model = self.backend.prepare(model)
        place_stages(model, self.manifest, self.backend)
        return model

    def _fit(self, key: str, stage: Any, model: Any) -> None:
        """Fit ``stage`` to the training data. A cacheable plugin's fit depends on the data alone, so it is
        fitted once per session: later models (restarts) get its files, its weights, which parameters it left
        trainable, and the outputs it already made (when its configuration keeps them cacheable). ``fit`` gets
        the session's log when it takes one (long fits show progress)."""
        import inspect

        cacheable = "cacheable" in self.manifest.stages[key].spec.capabilities
        shared = cacheable and hasattr(stage, "artifact_files") and hasattr(stage, "load_artifact_files")
        if shared and key in self._fitted:
            files, state, cache, trainable = self._fitted[key]
            stage.load_artifact_files(files)
            stage.load_state_dict(state)
            for name, p in stage.named_parameters():  # what fit left trainable stays so in every restart
                p.requires_grad_(name in trainable)
            if key in model.caches:
                model.caches[key] = cache
            return
        takes_log = "log" in inspect.signature(stage.fit).parameters
        stage.fit(self.dataset, **({"log": self.log} if takes_log else {}))
        self.log(f"{key}: fitted to the training data")
        if shared:
            state = {k: v.detach().clone() for k, v in stage.state_dict().items()}
            trainable = {name for name, p in stage.named_parameters() if p.requires_grad}
            self._fitted[key] = (stage.artifact_files(), state, model.caches.get(key), trainable)

    def check_outputs(self, model: Any) -> None:
        """Run two training samples through ``model`` holding each stage's output to the width its signature
        declared (see :meth:`~autoglm_sdk.pipeline.PipelineModel._check_width`); training's RNG is untouched."""
        import torch

        model.eval()
        model.check_widths = True
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=[]), self.backend.autocast():
                model(list(self.splits["train"][:2]))
        finally:
            model.check_widths = False

    def objectives(self, model: Any, *, task_weight: float | None = None) -> list[Any]:
        """The training loss's terms: the task, each stage's own, the manifest's ``[objectives.*]``."""
        import torch

        from autoglm_sdk.objectives import TaskLoss, class_weights, label_counts, stage_losses

        train = self.manifest.train
        weight = train.task_weight if task_weight is None else task_weight
        balanced = train.sampling == "balanced"
        task = TaskLoss(self.task, weight, label_smoothing=train.label_smoothing, balanced=balanced)
        if (train.class_weights != "none" or train.logit_adjustment) and not self.task.textual:
            counts = label_counts(self.split("train"), self.task)
            task.class_weights = class_weights(counts, train.class_weights, train.class_weight_beta)
            if train.logit_adjustment:
                task.log_prior = train.logit_adjustment * torch.log(counts.clamp_min(1) / counts.sum())
        return [task, *stage_losses(model), *model.objective_objects.values()]

    def train(
        self,
        model: Any,
        seed: int,
        *,
        progress: Any = None,
        checkpoint: Any = None,
        on_epoch: Callable[[int, dict[str, float]], None] | None = None,
        pretrain: bool = True,
    ) -> tuple[Any, dict[str, Any]]:
        """Pretraining phases of the objectives that have one (unless ``pretrain`` is False: a resumed checkpoint
        holds their result), then the pipeline on every objective. Returns the training result and the phases'
        figures."""
        from autoglm_sdk.trainer import fit

        phases: dict[str, Any] = {}
        lr_scales: dict[str, float] = {}
        for key, objective in model.objective_objects.items():
            if hasattr(objective, "pretrain") and pretrain:
                phases[key] = objective.pretrain(model, self, seed=seed, progress=progress)
            lr_scales.update(getattr(objective, "lr_scales", None) or {})
        result = fit(
            model,
            self.splits,
            self.manifest.train,
            self.objectives(model),
            task=self.task,
            seed=seed,
            autocast=self.backend.autocast,
            progress=progress,
            on_epoch=on_epoch,
            checkpoint=checkpoint,
            lr_scales={**stage_lr_scales(model), **lr_scales},
        )
        return result, phases

    def evaluate(self, model: Any, splits: tuple[str, ...] | None = None) -> dict[str, dict[str, Any]]:
        """Metrics of ``splits`` (default: every split of the data) (accuracy, loss, confusion, per group; a text
        task's generated text for every split but ``train``, which is scored teacher-forced)."""
        from autoglm_sdk.trainer import evaluate

        splits = splits or tuple(self.dataset.splits)
        out = {}
        for name in splits:
            samples = self.splits[name] if name in self.splits else self.split(name)
            self.log(f"evaluating {name} ({len(samples)} samples)")
            out[name] = evaluate(
                model,
                samples,
                self.task,
                self.batch_size,
                self.backend.autocast,
                self.dataset.group_key,
                generate=name != "train",  # a text task generates for held-back splits (the training one is large)
            )
        return out

    def finetuner(self, progress: Any = None) -> Callable[..., dict[str, Any]]:
        """A compressor's recovery training (``BuildContext.finetune``): ``[train]`` with the compressor's epochs
        and learning rate (no warm-up, restarts or early stop) on the session's objectives plus any it adds (a
        distillation term); ``task_weight`` replaces the task objective's weight."""

        def finetune(
            model: Any, epochs: int, lr: float, objectives: tuple[Any, ...] = (), task_weight: float | None = None
        ) -> dict[str, Any]:
            from autoglm_sdk.trainer import fit

            config = self.manifest.train.model_copy(
                update={
                    "epochs": epochs,
                    "lr": lr,
                    "warmup_epochs": 0,
                    "restarts": 1,
                    "patience": 0,
                    "unfreeze_every": 0,
                }
            )
            result = fit(
                model,
                self.splits,
                config,
                [*self.objectives(model, task_weight=task_weight), *objectives],
                task=self.task,
                seed=self.seed,
                autocast=self.backend.autocast,
                progress=progress,
                lr_scales=stage_lr_scales(model),
            )
            return {
                "epochs": len(result.history),
                "best_epoch": result.best_epoch,
                "best_val_accuracy": result.best_val,
            }

        return finetune

    def compress(
        self, model: Any, sections: list[Any], metrics: dict[str, Any], progress: Any = None
    ) -> tuple[Any, list[dict[str, Any]], dict[str, Any]]:
        """Apply ``[[compress]]`` sections in order, each profiled and evaluated (:mod:`autoglm_sdk.compression`)."""
        from autoglm_sdk.compression import compress_steps

        return compress_steps(model, self, sections, metrics, progress)


def _resolve(manifest: Manifest, log: Log) -> tuple[Any, list[Any]]:
    from autoglm_sdk.placement import resolve_backend

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        backend, fallbacks = resolve_backend(
            manifest.backend.spec, manifest.backend.config, BuildContext(seed=manifest.pipeline.seed)
        )
    for w in caught:
        log(f"warning: {w.message}")
    log(f"backend: {backend.probe().name} ({backend.device})")
    return backend, list(fallbacks)


def task_of(manifest: Manifest, dataset: Dataset) -> TaskSpec:
    """The data's task with the manifest's choice of task kind; a text task's target field must be in every
    training and validation sample, as a string."""
    from dataclasses import replace

    pipeline = manifest.pipeline
    task = replace(
        dataset.task, kind=pipeline.task, target=pipeline.target_field if pipeline.task != "classify" else ""
    )
    if not task.textual:
        return task
    for split in ("train", "val"):
        for i, sample in enumerate(dataset.splits.get(split) or []):
            if not isinstance(sample.get(task.target), str):
                fields = ", ".join(sorted(k for k, v in sample.items() if isinstance(v, str))) or "none"
                raise DataError(
                    f"pipeline.target_field: {split} sample {i} has no text field `{task.target}` "
                    f"(its text fields: {fields})",
                    hint="set [pipeline] target_field to the field holding the text to produce",
                )
    return task


def _load_data(manifest: Manifest) -> Dataset:
    section = manifest.stages["data"]
    return section.spec.create(section.config, BuildContext(seed=manifest.pipeline.seed, stage="data")).load()


def checkpoint_dir(output: str | Path) -> Path:
    """Where a build of ``output`` keeps its training checkpoint until the artifact is written."""
    output = Path(output)
    return output.with_name(f"{output.name}.checkpoint")


def stage_lr_scales(model: Any) -> dict[str, float]:
    """Stage key -> learning-rate factor, for the stages that ask for their own pace (attribute ``lr_scale``)."""
    return {k: s.lr_scale for k, s in model.stage_objects.items() if getattr(s, "lr_scale", None) is not None}
