"""Resolving the manifest's backend and placing each stage on its backend (no backend code lives here: the
``cpu`` and ``auto`` backends are plugins of autoglm-backends like every other)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from autoglm_sdk.errors import BackendUnavailableError
from autoglm_sdk.protocols import BuildContext


@dataclass
class StageNeed:
    """What a stage asks of a device, for a scheduler that places stages (``plan``): its bytes (weights, and while
    training their gradients and two optimiser moments) and the stages that feed it."""

    stage: str
    bytes: int
    inputs: tuple[str, ...] = ()


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
    decisions = plan_stages(model, manifest, main)
    for key, section in manifest.stages.items():
        if key == "data":
            continue
        if section.backend is None and key in decisions:
            backend = decided_backend(decisions[key], main, key)
            if hasattr(model.stage_objects[key], "to"):
                backend.prepare(model.stage_objects[key])
        elif section.backend is None:
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
    model.placement.decisions = {k: d.as_dict() for k, d in decisions.items()}
    return chosen


def plan_stages(model: Any, manifest: Any, main: Any) -> dict[str, Any]:
    """The scheduler's device for each stage without a backend of its own, when the scheduler places stages
    (``plan``; see the ``meta-controller`` scheduler); it is also told how to place them again (``replace``) when a
    device fails."""
    scheduler = model.scheduler
    if not callable(getattr(scheduler, "plan", None)):
        return {}
    factor = 4 if model.training else 1  # weights; and gradients plus two Adam moments while training
    needs = []
    for key in model.dag.order():
        section = manifest.stages[key]
        if key == "data" or section.backend is not None:
            continue
        stage = model.stage_objects[key]
        tensors = [*stage.parameters(), *stage.buffers()] if hasattr(stage, "parameters") else []
        size = sum(t.numel() * t.element_size() for t in tensors) * factor
        needs.append(StageNeed(key, size, tuple(model.dag.inputs[key])))
    scheduler.replace = lambda: place_stages(model, manifest, main)
    return scheduler.plan(needs)


def decided_backend(decision: Any, main: Any, key: str) -> Any:
    """The backend for a scheduler's decision: the main one when it names the main device."""
    if decision.device == getattr(main, "device", None):
        return main
    from autoglm_sdk.registry import default_registry

    spec = default_registry().spec("backend", decision.backend)
    config = spec.config.model_validate(decision.config)
    return resolve_backend(spec, config, BuildContext(stage=key), where=f"scheduler's placement of {key}")[0]


def backend_name(backend: Any) -> str:
    return backend.describe()["backend"] if hasattr(backend, "describe") else backend.probe().name
