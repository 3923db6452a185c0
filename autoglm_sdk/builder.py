"""``autoglm build``: manifest -> session -> trained, evaluated, compressed pipeline -> artifact directory."""

from __future__ import annotations

import json
import platform
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from autoglm_sdk import distributed
from autoglm_sdk.artifact import (
    REPORT_JSON,
    Lock,
    Report,
    output_lock,
    port_to_dict,
    task_to_dict,
    write_pipeline_artifact,
)
from autoglm_sdk.errors import ArtifactError
from autoglm_sdk.hooks import call_hook
from autoglm_sdk.manifest import Manifest
from autoglm_sdk.progress import progress_for
from autoglm_sdk.session import Session, checkpoint_dir


@dataclass
class BuildResult:
    path: Path
    report: dict[str, Any]


@dataclass
class Training:
    """The restart that won, and what every restart scored."""

    model: Any
    result: Any
    chosen: int
    attempts: list[dict[str, Any]] = field(default_factory=list)
    phases: dict[str, Any] = field(default_factory=dict)  # objectives' pretraining figures
    processes: int = 1  # data-parallel ranks that trained it


def build(
    manifest: Manifest,
    output: str | Path,
    *,
    overwrite: bool = False,
    resume: bool = False,
    progress: Any = "auto",
    log: Callable[[str], None] = lambda message: None,
) -> BuildResult:
    """Build ``manifest`` into the artifact directory ``output``; see :mod:`autoglm_sdk.artifact`.

    ``progress``: ``"auto"`` shows a progress bar with an ETA when stderr is a terminal; None shows nothing; a
    callable is called after every epoch with its metrics (see :mod:`autoglm_sdk.progress`).

    Training saves a checkpoint after every epoch in :func:`~autoglm_sdk.session.checkpoint_dir`; with
    ``resume`` it continues from there instead of starting over, if the manifest and data are unchanged.
    The checkpoint is removed once the artifact is written.
    """
    output = Path(output)
    if not distributed.is_main():
        # another rank of a data-parallel build: it trains beside rank 0, which alone checks, locks and writes
        _build(manifest, output, overwrite=overwrite, resume=resume or distributed.restarted(), progress=None, log=log)
        return None
    with output_lock(output):
        if output.exists() and not overwrite:  # refused before any checkpoint is touched
            raise ArtifactError(f"{output} already exists", hint="pass --force to replace it, or choose another -o")
        resume = resume or distributed.restarted()
        return _build(manifest, output, overwrite=overwrite, resume=resume, progress=progress_for(progress), log=log)


def _build(
    manifest: Manifest, output: Path, *, overwrite: bool, resume: bool, progress: Any, log: Callable[[str], None]
) -> BuildResult:
    timings: dict[str, float] = {}
    started = t = time.perf_counter()
    call_hook("autoglm_build_started", manifest=manifest.resolved(), output=str(output))
    session = Session.open(manifest, log=log)
    if distributed.init(session.backend.device):
        world = distributed.world()[1]
        log(f"data-parallel training: {world} processes (DDP over {distributed.backend_name()})")
        if len(session.splits["train"]) < world:  # one whole graph: only rank 0 has a share
            log(
                f"warning: the training split has {len(session.splits['train'])} sample(s) for {world} processes; "
                "the others train on nothing (set [train] neighbors to split a node task's graph into subgraphs)"
            )
    timings["data_seconds"] = time.perf_counter() - t
    checkpoint = checkpoint_dir(output)
    if checkpoint.exists() and not resume and distributed.is_main():
        log(f"discarding the checkpoint in {checkpoint} (pass --resume to continue from it)")
        shutil.rmtree(checkpoint)
    distributed.barrier()  # no rank reads the checkpoint folder while rank 0 may still be clearing it
    t = time.perf_counter()
    try:
        training = train_restarts(
            session,
            checkpoint,
            resume=resume,
            progress=progress,
            on_epoch=lambda epoch, metrics: call_hook("autoglm_epoch_ended", epoch=epoch, metrics=metrics),
        )
    except RuntimeError as exc:
        raise (distributed.peer_failure(exc) or exc) from exc
    timings["train_seconds"] = time.perf_counter() - t
    training.processes = distributed.world()[1]
    distributed.finish()  # evaluation, compression and writing are rank 0's alone
    if not distributed.is_main():
        return None
    t = time.perf_counter()
    model = training.model
    model.use_runners(True)  # final weights: stages on ONNX Runtime / torch.compile export or compile now
    metrics = session.evaluate(model)
    timings["eval_seconds"] = time.perf_counter() - t
    model, compression, metrics = session.compress(model, manifest.compress, metrics, progress)
    evaluations, pictures = plugin_evaluations(session, model, timings)
    timings["total_seconds"] = time.perf_counter() - started
    lock = Lock.of(session)
    report = build_report(session, model, metrics, training, compression, evaluations, timings, lock)
    write_pipeline_artifact(output, model, lock, report, overwrite=overwrite, pictures=pictures)
    shutil.rmtree(checkpoint, ignore_errors=True)
    call_hook("autoglm_artifact_written", path=str(output), report=report.as_dict())
    return BuildResult(output, report.as_dict())


def train_restarts(
    session: Session, checkpoint: Path, *, resume: bool = False, progress: Any = None, on_epoch: Any = None
) -> Training:
    """Train ``[train] restarts`` models (seeds seed, seed+1, ...) and keep the best on validation.

    Each restart keeps its own checkpoint, so ``resume`` replays finished restarts from their checkpoints and
    continues the interrupted one. The first model's stage outputs are checked against their declared ports.
    """
    from autoglm_sdk.trainer import Checkpointing, read_checkpoint

    restarts = session.manifest.train.restarts
    # what the saved training state depends on; --resume refuses a checkpoint made with other values, naming them
    fingerprint = {"manifest": session.manifest.resolved(), "data": session.dataset.fingerprint}
    best: tuple[float, Training] | None = None
    attempts: list[dict[str, Any]] = []
    models: list[Any] = []
    for attempt in range(restarts):
        seed = session.seed + attempt
        folder = checkpoint if restarts == 1 else checkpoint / f"restart-{attempt}"
        saved = read_checkpoint(folder, fingerprint) if resume else None
        if resume:
            session.log(
                f"resuming after epoch {saved['trainer']['epoch']} from {folder}"
                if saved
                else f"no checkpoint in {folder}: training from epoch 1"
            )
        if restarts > 1:
            session.log(f"restart {attempt + 1} of {restarts} (seed {seed})")
        model = session.new_model(seed)
        if attempt == 0:
            session.check_outputs(model)
        # a checkpoint holds the weights after the objectives' pretraining: a resumed restart does not redo it
        result, phases = session.train(
            model,
            seed,
            progress=progress,
            on_epoch=on_epoch,
            checkpoint=Checkpointing(folder, fingerprint, resume),
            pretrain=saved is None,
        )
        if result.best_val == result.best_val:
            score = result.best_val
        else:  # no validation score: the last training loss, or nothing at all with epochs = 0
            score = -result.history[-1]["train_loss"] if result.history else float("-inf")
        attempts.append(
            {"restart": attempt, "seed": seed, "best_val_accuracy": result.best_val, "epochs_run": len(result.history)}
        )
        if best is None or score > best[0]:  # ties keep the earlier restart
            best = (score, Training(model, result, attempt, attempts, phases))
        models.append(model)
    if session.manifest.train.keep == "ensemble" and restarts > 1:
        chosen = best[1]
        chosen.model.add_members([m for m in models if m is not chosen.model])
        session.log(f"keeping all {restarts} restarts as an ensemble (restart {chosen.chosen + 1} first)")
    return best[1]


def plugin_evaluations(session: Session, model: Any, timings: dict[str, float]) -> tuple[dict[str, Any], Any]:
    """Evaluations plugins add to the report (hook ``autoglm_evaluate``: cross-modal retrieval, ...), and a
    writer for their pictures. Each returns ``{"name", "figures", "markdown", "pictures"}`` or None."""
    t = time.perf_counter()
    found = [e for e in call_hook("autoglm_evaluate", session=session, model=model) if e]
    if found:
        timings["plugin_eval_seconds"] = time.perf_counter() - t
    evaluations = {e["name"]: {"figures": e.get("figures", {}), "markdown": e.get("markdown", [])} for e in found}

    def pictures(directory: Path) -> None:
        for evaluation in found:
            for name, draw in (evaluation.get("pictures") or {}).items():
                draw(directory / name)

    return evaluations, pictures


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


def build_report(
    session: Session,
    model: Any,
    metrics: dict[str, Any],
    training: Training,
    compression: list[dict[str, Any]],
    evaluations: dict[str, Any],
    timings: dict[str, float],
    lock: Lock,
) -> Report:
    """The build's :class:`~autoglm_sdk.artifact.Report` (``report.json``; ``report.md`` is rendered from it)."""
    import torch

    from autoglm_sdk.placement import Fallback, backend_name
    from autoglm_sdk.report import parameter_count

    manifest, result, dataset = session.manifest, training.result, session.dataset
    fallbacks = list(session.fallbacks)
    runners = {key: runner.describe() for key, runner in model.runners.items()}
    for key, described in runners.items():  # a stage its backend could not take runs eagerly: a fallback
        if described.get("eager_reason"):
            fallbacks.append(Fallback(f"{described['backend']} for {key}", described["eager_reason"]))
    status = session.backend.probe()
    return Report(
        pipeline=manifest.pipeline.name,
        description=manifest.pipeline.description,
        seed=session.seed,
        task=task_to_dict(session.task),
        data={
            "plugin": manifest.stages["data"].plugin,
            "fingerprint": dataset.fingerprint,
            "group_key": dataset.group_key,
            "sizes": {k: len(v) for k, v in dataset.splits.items()},
        },
        metrics=metrics,
        baselines=_baseline_metrics(manifest.pipeline.baselines),
        training={
            "epochs_run": len(result.history),
            "best_epoch": result.best_epoch,
            "best_val_accuracy": result.best_val,
            "stopped_early": result.stopped_early,
            "resumed_from_epoch": result.resumed_from,
            "processes": training.processes,
            "transfer": session.transfer,
            "blocks": result.blocks,
            "restarts": training.attempts,
            "chosen_restart": training.chosen,
            "history": result.history,
            "objectives": {o.name: o.weight for o in session.objectives(model)},
            "pretraining": training.phases or None,
        },
        model={
            "parameters": parameter_count(model),
            "weights_bytes": None,
            "stages": {k: s.plugin for k, s in manifest.stages.items()},
        },
        backend={
            "chosen": status.name,
            "device": session.backend.device,
            "stages": {
                key: backend_name(model.placement.stages.get(key, session.backend))
                for key in session.dag.order()
                if key != "data"
            },
            "fallbacks": [f.as_dict() for f in fallbacks],
            "runners": runners,
            "runner_summaries": {key: runner.summary() for key, runner in model.runners.items()},
            "capabilities": dict(status.capabilities),
            "placement": model.placement.decisions or None,
        },
        ports={k: port_to_dict(p) for k, p in session.ports.items()},
        stages={key: stage.report() for key, stage in model.stage_objects.items() if hasattr(stage, "report")},
        evaluations=evaluations,
        compression=compression,
        timings=timings,
        environment={"python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform()},
        plugins=lock.plugins,
    )
