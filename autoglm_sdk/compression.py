"""Compression steps, shared by ``autoglm build`` (``[[compress]]``) and ``autoglm compress ARTIFACT``: both run
them through the session (:meth:`autoglm_sdk.session.Session.compress`).

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


def calibration_samples(train: list[dict[str, Any]], count: int = 512) -> list[dict[str, Any]]:
    """The training samples compressors measure activations on: the first ``count`` (the split is shuffled
    at generation; a fixed slice keeps builds reproducible)."""
    return train[:count]


def compress_steps(
    model: Any, session: Any, sections: list[Any], metrics: dict[str, Any], progress: Any = None
) -> tuple[Any, list[dict[str, Any]], dict[str, Any]]:
    """Apply ``sections`` (resolved ``[[compress]]`` sections) in order; returns the model, one report entry per
    step and the metrics after the last one. ``metrics`` are the metrics before the first step. Compressors get
    the session's recovery training (``ctx.finetune``) and training samples to calibrate on."""
    from autoglm_sdk.bench import profile

    steps = []
    profiled = session.split("val")
    before_profile = profile(model, session.backend, profiled) if sections else None
    for section in sections:  # in order; each sees the previous one's output
        ctx = BuildContext(
            task=session.task,
            seed=session.seed,
            device=session.backend.device,
            stage=section.key,
            finetune=session.finetuner(progress),
            calibration=calibration_samples(session.split("train")),
        )
        compressor = section.spec.create(section.config, ctx)
        t = time.perf_counter()
        model.use_runners(False)  # the weights change: exported or compiled stages are redone after
        model = compressor.apply(model, ctx)
        model.use_runners(True)
        seconds = time.perf_counter() - t
        after = session.evaluate(model)
        after_profile = profile(model, session.backend, profiled)
        steps.append(
            {
                "section": section.key,
                "plugin": section.plugin,
                "seconds": seconds,
                "metrics_before": metrics,
                "metrics_after": after,
                "profile_before": before_profile,
                "profile_after": after_profile,
                "details": compressor.report() if hasattr(compressor, "report") else {},
            }
        )
        session.log(f"compress: {section.plugin} applied: {before_profile['bytes']} -> {after_profile['bytes']} bytes")
        metrics, before_profile = after, after_profile
    return model, steps, metrics


def compress_artifact(
    path: str | Path,
    sections: list[dict[str, Any]],
    output: str | Path,
    *,
    overwrite: bool = False,
    log: Callable[[str], None] = lambda message: None,
    progress: Any = None,
) -> dict[str, Any]:
    """Compress a built artifact into a new one at ``output``; returns the new report.

    The new sections are appended to the artifact's own ``[[compress]]`` list,
    validated like a manifest, applied to the loaded pipeline and recorded in
    its lock, so loading the result restores every compression in order.
    """
    import copy
    import dataclasses
    import json
    import shutil

    from autoglm_sdk.artifact import REPORT_JSON, load, write_pipeline_artifact
    from autoglm_sdk.manifest import validate_manifest

    path, output = Path(path), Path(output)
    pipeline = load(path)
    raw = copy.deepcopy(pipeline.lock.manifest)
    existing = list(raw.get("compress", []))
    raw["compress"] = existing + sections
    manifest = validate_manifest(raw, source="--with")
    session = dataclasses.replace(pipeline.session, manifest=manifest, log=log)
    report = json.loads((path / REPORT_JSON).read_text())
    model, steps, metrics = session.compress(
        pipeline.model, manifest.compress[len(existing) :], session.evaluate(pipeline.model), progress
    )
    report["compression"] = list(report.get("compression") or []) + steps
    if model.runners:  # re-exported or recompiled for the compressed weights
        report.setdefault("backend", {})["runners"] = {k: r.describe() for k, r in model.runners.items()}
        report["backend"]["runner_summaries"] = {k: r.summary() for k, r in model.runners.items()}
    report["metrics"] = metrics
    lock = dataclasses.replace(pipeline.lock, manifest=manifest.resolved())

    def pictures(directory: Path) -> None:  # plots made at build time (shared space); report.md remakes its own
        for picture in path.glob("*.png"):
            shutil.copy2(picture, directory / picture.name)

    write_pipeline_artifact(output, model, lock, report, overwrite=overwrite, pictures=pictures)
    return report
