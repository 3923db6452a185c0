"""The runnable pipeline: stage modules wired by a :class:`~autoglm_sdk.dag.Dag`, run by a Scheduler."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from autoglm_sdk.dag import SINK, Dag, aligned_stages
from autoglm_sdk.errors import InputError
from autoglm_sdk.manifest import Manifest
from autoglm_sdk.protocols import BuildContext, Port, TaskSpec


@dataclass
class Prediction:
    """Decoder logits, the graph the decoder saw (it carries ``y``/``label_mask`` for
    node tasks) and every stage's output by stage name (for explanations)."""

    logits: torch.Tensor
    graph: Any
    outputs: dict[str, Any]


def _module_key(stage: str) -> str:
    return stage.replace(".", "__")  # ModuleDict keys may not contain dots


class PipelineModel(nn.Module):
    """All learnable stages in one module, so one optimiser and one state_dict cover them."""

    def __init__(self, dag: Dag, stages: dict[str, Any], scheduler: Any, alignment: nn.Module | None = None,
                 aligned_stages: tuple[str, ...] = (), ports: dict[str, Port] | None = None) -> None:
        super().__init__()
        self.ports = ports or {}
        self.alignment = alignment  # an extra objective with its own parameter (the temperature)
        self.aligned_stages = aligned_stages
        self.dag = dag
        self.scheduler = scheduler
        self.stage_objects = stages  # every stage, learnable or not, by manifest key
        self.stage_backends: dict[str, Any] = {}  # stages that run on a backend of their own (see attach_stage_backends)
        self.main_backend: Any = None
        # Inference runners by stage (an ONNX Runtime session, a torch.compile'd module) that replace a stage's
        # eager forward once the weights are final: used only in eval mode while ``runners_active``.
        self.stage_runners: dict[str, Any] = {}
        self.runners_active = False
        self.stages = nn.ModuleDict({_module_key(k): m for k, m in stages.items() if isinstance(m, nn.Module)})

    def forward(self, samples: list[dict[str, Any]]) -> Prediction:
        if not samples:
            raise InputError("no samples to run the pipeline on")
        captured: dict[str, Any] = {}

        def call(stage: str, args: list[Any]) -> Any:
            if self.stage_backends and stage in self.stage_objects:
                # stages on different devices: each gets its inputs on its own, and its own autocast
                backend = self.stage_backends.get(stage, self.main_backend)
                args = [to_device(a, backend.device) for a in args]
                if stage in self.stage_backends:
                    with backend.autocast():
                        return run(stage, args)
            return run(stage, args)

        def run(stage: str, args: list[Any]) -> Any:
            module = self.stage_objects[stage]
            runner = self.stage_runners.get(stage) if self.runners_active and not self.training else None
            if stage == SINK:
                captured["graph"] = args[0]
            port = self.ports.get(stage)
            if stage.startswith("encoders.") and port is not None and len(port.modalities) == 1:
                from autoglm_sdk.encoding import encode_present

                (modality,) = port.modalities
                return encode_present(module, args[0], modality, port.dim, call=runner)
            call = runner or module
            if len(args) == 1:
                return call(args[0])
            return call(dict(zip(self.dag.inputs[stage], args)))

        outputs = self.scheduler.run(self.dag, {"data": samples}, call)
        return Prediction(outputs[SINK], captured.get("graph"), outputs)


def set_runners_active(model: Any, active: bool) -> None:
    """Switch the stages' inference runners on (final weights) or off (weights about to change); switching off
    also drops what they exported or compiled, so the next activation sees the new weights."""
    if not active:
        for runner in getattr(model, "stage_runners", {}).values():
            runner.invalidate()
    model.runners_active = active


def map_tensors(value: Any, fn: Any) -> Any:
    """``value`` with ``fn`` applied to every tensor inside it: plain tensors, PyG graphs (on a copy, so the
    caller's graph is unchanged), dataclasses such as encoder outputs, dicts, and lists or tuples of those.
    Raw samples (lists of dicts, strings) pass through: encoders place and convert their own inputs."""
    import dataclasses

    if isinstance(value, torch.Tensor):
        return fn(value)
    if hasattr(value, "apply") and hasattr(value, "to_dict"):  # PyG Data / Batch
        return value.clone().apply(fn)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: map_tensors(getattr(value, f.name), fn)
                                             for f in dataclasses.fields(value) if f.init})
    if isinstance(value, dict):
        return {k: map_tensors(v, fn) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and value and not isinstance(value[0], (str, bytes, dict)):
        return type(value)(map_tensors(v, fn) for v in value)
    return value


def to_device(value: Any, device: Any) -> Any:
    """``value`` with every tensor inside it on ``device`` (see :func:`map_tensors`)."""
    return map_tensors(value, lambda t: t.to(device))


def construct_stages(
    manifest: Manifest, dag: Dag, ports: dict[str, Port], task: TaskSpec, device: str = "cpu", seed: int | None = None
) -> dict[str, Any]:
    """Build every stage except ``data`` in DAG order, from one seeded generator state
    (``seed``, default the manifest's; restarts pass their own)."""
    seed = manifest.pipeline.seed if seed is None else seed
    torch.manual_seed(seed)
    stages: dict[str, Any] = {}
    for key in dag.order():
        if key == "data":
            continue
        section = manifest.stages[key]
        ctx = BuildContext(
            inputs={u: ports[u] for u in dag.inputs[key]}, task=task, seed=seed, device=device, stage=key
        )
        stages[key] = section.spec.create(section.config, ctx)
    return stages


def build_model(
    manifest: Manifest, dag: Dag, ports: dict[str, Port], task: TaskSpec, device: str = "cpu", seed: int | None = None
) -> PipelineModel:
    stages = construct_stages(manifest, dag, ports, task, device, seed)
    scheduler = manifest.scheduler.spec.create(manifest.scheduler.config, BuildContext(seed=manifest.pipeline.seed))
    config = manifest.train.alignment
    if config is None:
        return PipelineModel(dag, stages, scheduler, ports=ports)
    from autoglm_sdk.alignment import ContrastiveAlignment

    alignment = ContrastiveAlignment(config.init_temperature, config.max_logit_scale, config.exclude_same_class)
    return PipelineModel(dag, stages, scheduler, alignment, aligned_stages(manifest), ports)

