"""Compression steps: ``[[compress]]`` sections applied through the session
(:meth:`autoglm_sdk.session.Session.compress`), by ``autoglm build`` and by autoglm-compress's ``autoglm compress``.

Each step applies one compressor to the model, then profiles it (weights on
disk, stored values, p50/p90 latency at batch 1 and 32 on the validation
split) and evaluates every split, so the report can set each step's figures
beside the previous ones.
"""

from __future__ import annotations

import time
from typing import Any

from autoglm_sdk.protocols import BuildContext


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
