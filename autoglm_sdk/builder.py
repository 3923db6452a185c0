"""``autoglm build``: manifest -> data -> fitted, evaluated pipeline -> artifact directory."""

from __future__ import annotations

import hashlib
import json
import platform
import random
import shutil
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from autoglm_sdk import __version__
from autoglm_sdk.artifact import FORMAT_VERSION, REPORT_JSON, port_to_dict, task_to_dict, write_pipeline_artifact
from autoglm_sdk.errors import DataError
from autoglm_sdk.hooks import HOOKSPEC_VERSION, plugin_manager
from autoglm_sdk.manifest import Manifest
from autoglm_sdk.protocols import CONTRACT_VERSION, BuildContext


def _baseline_metrics(paths: list[str]) -> dict[str, Any]:
    """Test metrics of already-built baseline artifacts; a missing one is noted, not fatal."""
    out: dict[str, Any] = {}
    for path in paths:
        report = Path(path) / REPORT_JSON
        if not report.exists():
            out[path] = {"missing": f"no {REPORT_JSON}: build it first"}
            continue
        data = json.loads(report.read_text())
        out[path] = {"pipeline": data.get("pipeline"), "test": data["metrics"].get("test", {})}
    return out


@dataclass
class BuildResult:
    path: Path
    report: dict[str, Any]


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _distribution_of(spec: Any) -> tuple[str, str]:
    """(distribution, version) that provides a spec's module, or ("unknown", "")."""
    top = spec.factory.split(".", 1)[0].split(":", 1)[0]
    for dist in metadata.packages_distributions().get(top, []):
        try:
            return dist, metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "unknown", ""


def _environment() -> dict[str, str]:
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform()}


def checkpoint_dir(output: str | Path) -> Path:
    """Where a build of ``output`` keeps its training checkpoint until the artifact is written."""
    output = Path(output)
    return output.with_name(f"{output.name}.checkpoint")


def build(
    manifest: Manifest,
    output: str | Path,
    *,
    overwrite: bool = False,
    resume: bool = False,
    progress: Any = None,
    log: Callable[[str], None] = lambda message: None,
) -> BuildResult:
    """Build ``manifest`` into the artifact directory ``output``; see :mod:`autoglm_sdk.artifact`.

    Training saves a checkpoint after every epoch in :func:`checkpoint_dir`; with
    ``resume`` it continues from there instead of starting over, if the manifest
    and data are unchanged. The checkpoint is removed once the artifact is written.
    """
    from autoglm_sdk.builtins.backends import Fallback, attach_stage_backends, backend_name, resolve_backend
    from autoglm_sdk.dag import check_fit, pretrained_stages, wire
    from autoglm_sdk.pipeline import build_model, set_runners_active
    from autoglm_sdk.report import parameter_count
    from autoglm_sdk.trainer import PretrainResult, class_ids, evaluate, fit, pretrain_encoders, read_checkpoint

    output = Path(output)
    hooks = plugin_manager().hook
    resolved = manifest.resolved()
    seed = manifest.pipeline.seed
    timings: dict[str, float] = {}
    started = time.perf_counter()
    hooks.autoglm_build_started(manifest=resolved, output=str(output))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        backend, fallbacks = resolve_backend(manifest.backend.spec, manifest.backend.config, BuildContext(seed=seed))
    for w in caught:
        log(f"warning: {w.message}")
    status = backend.probe()
    log(f"backend: {status.name} ({backend.device})")

    t = time.perf_counter()
    seed_everything(seed)
    data_section = manifest.stages["data"]
    source = data_section.spec.create(data_section.config, BuildContext(seed=seed, stage="data"))
    dataset = source.load()
    timings["data_seconds"] = time.perf_counter() - t
    for split in ("train", "val", "test"):
        if not dataset.splits.get(split):
            raise DataError(f"data `{data_section.plugin}` produced an empty `{split}` split", hint="check its split sizes")
    log(f"data: {data_section.plugin} " + ", ".join(f"{k}={len(v)}" for k, v in dataset.splits.items()))

    dag = wire(manifest)
    ports = check_fit(manifest, dag, data_port=dataset.port, task=dataset.task)

    def fresh_model(attempt_seed: int) -> Any:
        model = build_model(manifest, dag, ports, dataset.task, device=backend.device, seed=attempt_seed)
        for key, stage in model.stage_objects.items():
            if hasattr(stage, "fit"):  # tokenizers, vocabularies: learned from data before training
                stage.fit(dataset)
                log(f"{key}: fitted to the training data")
        model = backend.prepare(model)
        attach_stage_backends(model, manifest, backend)
        return model

    checkpoint = checkpoint_dir(output)
    # what the saved training state depends on; --resume refuses a checkpoint made with other values
    fingerprint = {"manifest": hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest(),
                   "data": dataset.fingerprint}
    if checkpoint.exists() and not resume:
        log(f"discarding the checkpoint in {checkpoint} (pass --resume to continue from it)")
        shutil.rmtree(checkpoint)
    t = time.perf_counter()
    restarts = manifest.train.restarts
    pretrain = manifest.train.pretrain_encoders
    to_pretrain = pretrained_stages(manifest) if pretrain else ()
    lr_scales = {stage: pretrain.lr_scale_after for stage in to_pretrain}
    attempts: list[dict[str, Any]] = []
    best: tuple[float, int, Any, Any, Any] | None = None
    for attempt in range(restarts):
        # each restart starts from its own initialisation and keeps its own checkpoint, so --resume
        # replays finished restarts from their checkpoints and continues the interrupted one
        attempt_seed = seed + attempt
        attempt_checkpoint = checkpoint if restarts == 1 else checkpoint / f"restart-{attempt}"
        saved = None
        if resume:
            saved = read_checkpoint(attempt_checkpoint, fingerprint)
            log(f"resuming after epoch {saved['trainer']['epoch']} from {attempt_checkpoint}" if saved
                else f"no checkpoint in {attempt_checkpoint}: training from epoch 1")
        if restarts > 1:
            log(f"restart {attempt + 1} of {restarts} (seed {attempt_seed})")
        candidate = fresh_model(attempt_seed)
        pretrained = PretrainResult()
        # a checkpoint holds the weights after pretraining, so a resumed build does not pretrain again
        if to_pretrain and saved is None:
            pretrained = pretrain_encoders(candidate, to_pretrain, dataset.splits, dataset.task,
                                           manifest.train, seed=attempt_seed, autocast=backend.autocast,
                                           progress=progress)
            for stage, scores in pretrained.stages.items():
                log(f"{stage}: pretrained alone, probe val accuracy {scores['best_val_accuracy']:.3f} "
                    f"(epoch {scores['best_epoch']})")
        result = fit(
            candidate,
            dataset.splits,
            dataset.task,
            manifest.train,
            seed=attempt_seed,
            autocast=backend.autocast,
            on_epoch=lambda epoch, metrics: hooks.autoglm_epoch_ended(epoch=epoch, metrics=metrics),
            progress=progress,
            checkpoint=attempt_checkpoint,
            resume=resume,
            fingerprint=fingerprint,
            modalities=tuple(sorted(dataset.port.modalities)),
            stage_lr_scale=lr_scales,
        )
        if result.best_val == result.best_val:
            score = result.best_val
        else:  # no validation score: the last training loss, or nothing at all with epochs = 0
            score = -result.history[-1]["train_loss"] if result.history else float("-inf")
        attempts.append({"restart": attempt, "seed": attempt_seed, "best_val_accuracy": result.best_val,
                         "epochs_run": len(result.history)})
        if best is None or score > best[0]:  # ties keep the earlier restart
            best = (score, attempt, candidate, result, pretrained)
    _, chosen, model, train_result, pretrain_result = best
    timings["train_seconds"] = time.perf_counter() - t

    def evaluate_all(subject: Any) -> dict[str, dict[str, float]]:
        return {
            split: evaluate(subject, samples, dataset.task, manifest.train.batch_size, backend.autocast, dataset.group_key)
            for split, samples in dataset.splits.items()
        }

    t = time.perf_counter()
    set_runners_active(model, True)  # final weights: stages on ONNX Runtime / torch.compile export or compile now
    metrics = evaluate_all(model)
    timings["eval_seconds"] = time.perf_counter() - t
    from autoglm_sdk.compression import calibration_samples, compress_steps, finetuner

    model, compression, metrics = compress_steps(
        model, backend, manifest.compress, evaluate_all, dataset.splits["val"], metrics, dataset.task, seed,
        log, finetuner(dataset.splits, dataset.task, manifest.train, backend.autocast, seed, progress),
        calibration_samples(dataset.splits["train"]))

    crossmodal = None
    encoders = [k for k in manifest.stages if k.startswith("encoders.")]
    if encoders and len(dataset.port.modalities) > 1 and dataset.task.level == "graph":
        from autoglm_sdk.crossmodal import evaluate_crossmodal, plot_shared_space

        t = time.perf_counter()
        names = {k: "+".join(sorted(ports[k].modalities)) for k in encoders}
        crossmodal = evaluate_crossmodal(model, dataset, getattr(model, "aligned_stages", ()), names,
                                         manifest.train.batch_size, backend.autocast, seed)
        vectors = crossmodal.pop("_vectors")
        timings["crossmodal_eval_seconds"] = time.perf_counter() - t
    stage_reports = {key: stage.report() for key, stage in model.stage_objects.items() if hasattr(stage, "report")}
    plugins = {}
    for section in manifest.sections():
        dist, version = _distribution_of(section.spec)
        plugins[section.key] = {"plugin": section.plugin, "kind": section.kind, "distribution": dist, "version": version}
    stage_backends = {key: backend_name(model.stage_backends.get(key, backend)) for key in dag.order() if key != "data"}
    runners = {key: runner.describe() for key, runner in model.stage_runners.items()}
    for key, described in runners.items():  # a stage its backend could not take runs eagerly: a fallback
        if described.get("eager_reason"):
            fallbacks.append(Fallback(f"{described['backend']} for {key}", described["eager_reason"]))
    lock = {
        "autoglm": {
            "format_version": FORMAT_VERSION,
            "sdk_version": __version__,
            "contract_version": CONTRACT_VERSION,
            "hookspec_version": HOOKSPEC_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
        "data": {"fingerprint": dataset.fingerprint},
        "task": task_to_dict(dataset.task),
        "ports": {k: port_to_dict(p) for k, p in ports.items()},
        "plugins": plugins,
        "manifest": resolved,
    }
    timings["total_seconds"] = time.perf_counter() - started
    report = {
        "pipeline": manifest.pipeline.name,
        "description": manifest.pipeline.description,
        "seed": seed,
        "task": task_to_dict(dataset.task),
        "data": {"plugin": data_section.plugin, "fingerprint": dataset.fingerprint, "group_key": dataset.group_key,
                 "sizes": {k: len(v) for k, v in dataset.splits.items()}},
        "metrics": metrics,
        "baselines": _baseline_metrics(manifest.pipeline.baselines),
        "training": {
            "epochs_run": len(train_result.history),
            "best_epoch": train_result.best_epoch,
            "best_val_accuracy": train_result.best_val,
            "stopped_early": train_result.stopped_early,
            "resumed_from_epoch": train_result.resumed_from,
            "restarts": attempts,
            "chosen_restart": chosen,
            "history": train_result.history,
            "pretrain_encoders": pretrain_result.stages or None,
        },
        "model": {"parameters": parameter_count(model), "weights_bytes": None,
                  "stages": {k: s.plugin for k, s in manifest.stages.items()}},
        "backend": {"chosen": status.name, "device": backend.device, "stages": stage_backends,
                    "fallbacks": [f.as_dict() for f in fallbacks], "runners": runners, "capabilities": dict(status.capabilities)},
        "stages": stage_reports,
        "crossmodal": crossmodal,
        "compression": compression,
        "timings": timings,
        "environment": _environment(),
        "plugins": plugins,
    }

    def pictures(directory: Path) -> None:
        if crossmodal is not None and vectors:
            labels = class_ids(dataset.splits["test"])
            plot_shared_space(vectors, labels, names, dataset.task.label_names, directory / "shared_space.png")

    write_pipeline_artifact(output, model, lock, report, overwrite=overwrite, pictures=pictures)
    shutil.rmtree(checkpoint, ignore_errors=True)
    hooks.autoglm_artifact_written(path=str(output), report=report)
    return BuildResult(output, report)

