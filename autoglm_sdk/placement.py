"""Resolving the manifest's backend and placing each stage on its backend (no backend code lives here: the
``cpu`` and ``auto`` backends are plugins of autoglm-backends like every other)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from autoglm_sdk.errors import BackendUnavailableError
from autoglm_sdk.protocols import BuildContext


@dataclass
class Fallback:
    """One preference that was skipped, and why."""

    wanted: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"wanted": self.wanted, "reason": self.reason}


def resolve_backend(
    spec: Any, config: Any, ctx: BuildContext | None = None, where: str = "backend.plugin"
) -> tuple[Any, list[Fallback]]:
    """Construct the manifest's backend. A backend named explicitly and unusable is an error, never a fallback."""
    backend = spec.create(config, ctx)
    fallbacks = getattr(backend, "fallbacks", None)  # a backend that chose among others (`auto`) says what it skipped
    if fallbacks is not None:
        return backend, list(fallbacks)
    status = backend.probe()
    if not status.usable:
        raise BackendUnavailableError(
            f"{where}: `{spec.name}` is not usable here: {status.reason or 'not available'}",
            hint='use plugin = "auto" with prefer = [...] and fallback = "warn" to fall back',
        )
    return backend, []


def place_stages(model: Any, manifest: Any, main: Any) -> dict[str, Any]:
    """Put each stage that names its own ``backend`` on it (default config; an unusable one is an error naming
    the stage); every other stage stays on ``main``. A backend that runs stages its own way (``wrap_stage``:
    ONNX Runtime, torch.compile) gets a runner for each of its stages, used once the weights are final (see
    :meth:`autoglm_sdk.pipeline.PipelineModel.use_runners`). Records the placement on the model
    (:meth:`~autoglm_sdk.pipeline.PipelineModel.place`) and returns every stage's backend by stage key."""
    chosen: dict[str, Any] = {}
    runners: dict[str, Any] = {}
    for key, section in manifest.stages.items():
        if key == "data":
            continue
        if section.backend is None:
            backend = main
        else:
            spec = section.backend_spec
            backend, _ = resolve_backend(spec, spec.config(), BuildContext(stage=key), where=f"{key}.backend")
            stage = model.stage_objects[key]
            if hasattr(stage, "to"):
                backend.prepare(stage)
        chosen[key] = backend
        inner = getattr(getattr(backend, "chosen", None), "backend", backend)  # through `auto` to what it chose
        if hasattr(inner, "wrap_stage"):
            inputs = {u: model.ports[u] for u in model.dag.inputs[key] if u in model.ports}
            runners[key] = inner.wrap_stage(key, model.stage_objects[key], inputs, explicit=section.backend is not None)
    model.place(main, {k: b for k, b in chosen.items() if b is not main}, runners)
    return chosen


def backend_name(backend: Any) -> str:
    return backend.describe()["backend"] if hasattr(backend, "describe") else backend.probe().name
