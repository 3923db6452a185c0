"""Compression steps, shared by ``autoglm build`` (``[[compress]]``) and ``autoglm compress ARTIFACT``.

Each step applies one compressor to the model, then profiles it (weights on
disk, stored values, p50/p90 latency at batch 1 and 32 on the validation
split) and evaluates every split, so the report can set each step's figures
beside the previous ones.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from autoglm_sdk.protocols import BuildContext


def parse_with(text: str) -> dict[str, Any]:
    """``prune:amount=0.5,stages=["reasoner"]`` -> ``{"plugin": "prune", "amount": 0.5, "stages": ["reasoner"]}``;
    values parse as TOML (else as strings), commas inside brackets or quotes do not split."""
    from autoglm_sdk.errors import ManifestError
    from autoglm_sdk.manifest import parse_override

    name, _, rest = text.partition(":")
    if not name.strip():
        raise ManifestError(f"--with {text!r}: expected NAME or NAME:KEY=VALUE,..., for example --with int8")
    section: dict[str, Any] = {"plugin": name.strip()}
    parts, depth, quote, current = [], 0, "", ""
    for char in rest:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += char
    if current.strip():
        parts.append(current)
    for part in parts:
        path, value = parse_override(part)
        if len(path) != 1:
            raise ManifestError(f"--with {text!r}: `{'.'.join(path)}` is not an option name of {name}")
        section[path[0]] = value
    return section


def finetuner(splits: dict[str, list[dict[str, Any]]], task: Any, train: Any, autocast: Any, seed: int,
              progress: Any = None) -> Callable[..., dict[str, Any]]:
    """A compressor's recovery training (``BuildContext.finetune``): the manifest's ``[train]`` settings with the
    compressor's epochs and learning rate, no warm-up, restarts or encoder pretraining; optionally distilled from a
    ``teacher`` pipeline (see :func:`autoglm_sdk.trainer.fit`)."""

    def finetune(model: Any, epochs: int, lr: float, teacher: Any = None, distill_weight: float = 0.5,
                 temperature: float = 2.0) -> dict[str, Any]:
        from autoglm_sdk.trainer import fit

        config = train.model_copy(update={"epochs": epochs, "lr": lr, "warmup_epochs": 0, "restarts": 1,
                                          "pretrain_encoders": None, "patience": 0})
        if teacher is not None:
            teacher.eval()
        result = fit(model, splits, task, config, seed=seed, autocast=autocast, progress=progress, teacher=teacher,
                     distill_weight=distill_weight, temperature=temperature)
        return {"epochs": len(result.history), "best_epoch": result.best_epoch, "best_val_accuracy": result.best_val}

    return finetune


def calibration_samples(train: list[dict[str, Any]], count: int = 512) -> list[dict[str, Any]]:
    """The training samples compressors measure activations on: the first ``count`` (the split is shuffled
    at generation; a fixed slice keeps builds reproducible)."""
    return train[:count]


def compress_steps(model: Any, backend: Any, sections: list[Any], evaluate_all: Callable[[Any], dict[str, Any]],
                   profiled: list[dict[str, Any]], metrics: dict[str, Any], task: Any, seed: int,
                   log: Callable[[str], None] = lambda message: None,
                   finetune: Callable[..., dict[str, Any]] | None = None,
                   calibration: list[dict[str, Any]] | None = None) -> tuple[Any, list[dict[str, Any]], dict[str, Any]]:
    """Apply ``sections`` (resolved ``[[compress]]`` sections) in order; returns the model, one report entry per
    step and the metrics after the last one. ``metrics`` are the metrics before the first step; ``finetune``
    is handed to compressors that train to recover (see :func:`finetuner`), ``calibration`` (training samples)
    to those that measure activations."""
    from autoglm_sdk.bench import profile
    from autoglm_sdk.pipeline import set_runners_active

    steps = []
    before_profile = profile(model, backend, profiled) if sections else None
    for section in sections:  # in order; each sees the previous one's output
        ctx = BuildContext(task=task, seed=seed, device=backend.device, stage=section.key, finetune=finetune,
                           calibration=calibration)
        compressor = section.spec.create(section.config, ctx)
        t = time.perf_counter()
        set_runners_active(model, False)  # the weights change: exported or compiled stages are redone after
        model = compressor.apply(model, ctx)
        set_runners_active(model, True)
        seconds = time.perf_counter() - t
        after = evaluate_all(model)
        after_profile = profile(model, backend, profiled)
        steps.append({"section": section.key, "plugin": section.plugin, "seconds": seconds,
                      "metrics_before": metrics, "metrics_after": after,
                      "profile_before": before_profile, "profile_after": after_profile,
                      "details": compressor.report() if hasattr(compressor, "report") else {}})
        log(f"compress: {section.plugin} applied: {before_profile['bytes']} -> {after_profile['bytes']} bytes")
        metrics, before_profile = after, after_profile
    return model, steps, metrics


def compress_artifact(path: str | Path, sections: list[dict[str, Any]], output: str | Path, *, overwrite: bool = False,
                      log: Callable[[str], None] = lambda message: None, progress: Any = None) -> dict[str, Any]:
    """Compress a built artifact into a new one at ``output``; returns the new report.

    The new sections are appended to the artifact's own ``[[compress]]`` list,
    validated like a manifest, applied to the loaded pipeline and recorded in
    its lock, so loading the result restores every compression in order.
    """
    import copy
    import json
    import shutil

    from autoglm_sdk.artifact import REPORT_JSON, load, write_pipeline_artifact
    from autoglm_sdk.manifest import validate_manifest
    from autoglm_sdk.trainer import evaluate

    path, output = Path(path), Path(output)
    pipeline = load(path)
    lock = copy.deepcopy(pipeline.lock)
    raw = copy.deepcopy(lock["manifest"])
    existing = list(raw.get("compress", []))
    raw["compress"] = existing + sections
    manifest = validate_manifest(raw, source="--with")
    report = json.loads((path / REPORT_JSON).read_text())
    splits = {split: pipeline.data_split(split) for split in ("train", "val", "test")}
    group_key = report.get("data", {}).get("group_key")

    def evaluate_all(model: Any) -> dict[str, Any]:
        return {split: evaluate(model, samples, pipeline.task, manifest.train.batch_size, pipeline.backend.autocast,
                                group_key) for split, samples in splits.items()}

    finetune = finetuner(splits, pipeline.task, manifest.train, pipeline.backend.autocast, manifest.pipeline.seed,
                         progress)
    model, steps, metrics = compress_steps(pipeline.model, pipeline.backend, manifest.compress[len(existing):],
                                           evaluate_all, splits["val"], evaluate_all(pipeline.model), pipeline.task,
                                           manifest.pipeline.seed, log, finetune, calibration_samples(splits["train"]))
    report["compression"] = list(report.get("compression") or []) + steps
    if getattr(model, "stage_runners", None):  # re-exported or recompiled for the compressed weights
        report.setdefault("backend", {})["runners"] = {k: r.describe() for k, r in model.stage_runners.items()}
    report["metrics"] = metrics
    lock["manifest"] = manifest.resolved()

    def pictures(directory: Path) -> None:  # plots made at build time (shared space); report.md remakes its own
        for picture in path.glob("*.png"):
            shutil.copy2(picture, directory / picture.name)

    write_pipeline_artifact(output, model, lock, report, overwrite=overwrite, pictures=pictures)
    return report
