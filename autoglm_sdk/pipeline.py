"""The runnable pipeline: stage modules wired by a :class:`~autoglm_sdk.dag.Dag`, run by a Scheduler."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from autoglm_sdk.dag import SINK, Dag
from autoglm_sdk.errors import AutoGLMError, InputError, PluginLoadError, StageFailed, StageMismatchError
from autoglm_sdk.manifest import Manifest
from autoglm_sdk.protocols import BuildContext, Port, TaskSpec


@dataclass
class Prediction:
    """Decoder logits, the graph the decoder saw (it carries ``y``/``label_mask`` for
    node tasks) and every stage's output by stage name (for explanations). A text decoder's
    :class:`~autoglm_sdk.protocols.TextOutput` is ``outputs["decoder"]``; ``logits`` are then its token logits."""

    logits: torch.Tensor
    graph: Any
    outputs: dict[str, Any]

    @property
    def text(self) -> Any:
        """The decoder's :class:`~autoglm_sdk.protocols.TextOutput`, or None for a classifying decoder."""
        out = self.outputs.get(SINK)
        return None if isinstance(out, torch.Tensor) else out


#: samples whose graphs one cached stage keeps (cleared when full)
CACHE_LIMIT = 200_000


def _module_key(stage: str) -> str:
    return stage.replace(".", "__")  # ModuleDict keys may not contain dots


@dataclass
class Placement:
    """Where a pipeline's stages run, kept apart from the modules: ``main`` by default, ``stages`` (key -> backend)
    for stages with a backend of their own, ``runners`` (key -> :class:`~autoglm_sdk.protocols.StageRunner`) for
    stages a backend runs its own way (ONNX Runtime, torch.compile), used in eval mode while ``active``."""

    main: Any = None
    stages: dict[str, Any] = field(default_factory=dict)
    runners: dict[str, Any] = field(default_factory=dict)
    active: bool = False
    decisions: dict[str, Any] = field(default_factory=dict)  # a placing scheduler's choice, scores, reasons by stage


class PipelineModel(nn.Module):
    """All learnable stages (and learnable objectives) in one module, so one optimiser and one state_dict cover them.

    Device placement is kept apart from the modules, in one :class:`Placement` (set by :meth:`place`): which
    backend runs which stage, and which stages a backend runs its own way once the weights are final.
    """

    def __init__(
        self,
        dag: Dag,
        stages: dict[str, Any],
        scheduler: Any,
        ports: dict[str, Port] | None = None,
        objectives: dict[str, Any] | None = None,
        origins: dict[str, str] | None = None,
        cached: tuple[str, ...] = (),
        shared: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__()
        self.ports = ports or {}
        self.dag = dag
        self.scheduler = scheduler
        self.stage_objects = stages  # every stage, learnable or not, by manifest key
        self.origins = origins or {}  # stage -> "`plugin` from distribution version", for error messages
        self.placement = Placement()
        self.check_widths = False  # set while a build checks each stage's output against its declared port
        self._sink_call: Callable[[Any, Any], Any] | None = None  # run_sink()'s call while it runs
        # stages whose output for a sample depends on that sample alone (capability "cacheable", fed by the data
        # only): each sample's output is made once and kept, by sample object (held, so its id stays its own)
        self.caches: dict[str, dict[int, tuple[Any, Any]]] = {key: {} for key in cached or ()}
        self.stages = nn.ModuleDict({_module_key(k): m for k, m in stages.items() if isinstance(m, nn.Module)})
        self.objective_objects = dict(objectives or {})
        self.objectives = nn.ModuleDict(
            {_module_key(k): o for k, o in self.objective_objects.items() if isinstance(o, nn.Module)}
        )
        # further ensemble members ([train] keep = "ensemble"): each its own copy of the stages restarts train
        self.members = nn.ModuleList()
        # fitted once for every restart: the cacheable builders, whether or not this model keeps their outputs
        self.shared_stages = tuple(cached if shared is None else shared)

    def member_stages(self) -> tuple[str, ...]:
        """The stages an ensemble member holds its own copy of: the learnable ones restarts do not share."""
        return tuple(
            k
            for k, m in self.stage_objects.items()
            if isinstance(m, nn.Module) and any(True for _ in m.parameters()) and k not in self.shared_stages
        )

    def add_members(self, models: list["PipelineModel"] | int) -> None:
        """Make ``models`` (other restarts of this pipeline) ensemble members, keeping their own stages; an int
        adds that many copies of this model's own stages (a loaded artifact's room for its members' weights)."""
        own = self.member_stages()
        if isinstance(models, int):
            members = [{k: copy.deepcopy(self.stage_objects[k]) for k in own} for _ in range(models)]
        else:
            members = [{k: model.stage_objects[k] for k in own} for model in models]
        self.members.extend(nn.ModuleDict({_module_key(k): m for k, m in stages.items()}) for stages in members)

    def _ensemble_logits(self, samples: list[dict[str, Any]], outputs: dict[str, Any], logits: torch.Tensor) -> Any:
        """Log of the members' mean class probability (this model is the first member); every stage a member
        does not hold of its own gives its output from this model's pass, so a builder reads each text once."""
        own = self.member_stages()
        probabilities = logits.float().softmax(-1)
        for member in self.members:

            def call(stage: str, args: list[Any], member: nn.ModuleDict = member) -> Any:
                return self._run(stage, args, {}, member[_module_key(stage)]) if stage in own else outputs[stage]

            probabilities = probabilities + self.scheduler.run(self.dag, {"data": samples}, call)[SINK].float().softmax(
                -1
            )
        return (probabilities / (len(self.members) + 1)).log().to(logits.dtype)

    def abstentions(self, pred: Prediction) -> list[str | None]:
        """Per sample of ``pred``: why the pipeline should not answer it (see
        :func:`~autoglm_sdk.graph.query_abstentions`), or None. The graph judged is the builder's; the reach is the
        reasoner's ``reach`` attribute when it declares one (the rounds of message passing it runs)."""
        from autoglm_sdk.graph import query_abstentions

        graph = pred.outputs.get("graph_builder", pred.graph)
        if graph is None or not hasattr(graph, "edge_index"):
            return [None] * int(pred.logits.size(0))
        return query_abstentions(graph, getattr(self.stage_objects.get("reasoner"), "reach", None))

    def place(self, main: Any, stage_backends: dict[str, Any], runners: dict[str, Any]) -> None:
        """Record where stages run (see :class:`Placement`)."""
        self.placement = Placement(main, stage_backends, runners)

    @property
    def runners(self) -> dict[str, Any]:
        return self.placement.runners

    def use_runners(self, active: bool) -> None:
        """Switch the stages' runners on (final weights) or off (weights about to change); switching off also
        drops what they exported or compiled, so the next activation sees the new weights."""
        if not active:
            for runner in self.runners.values():
                runner.invalidate()
        self.placement.active = active

    def runner(self, stage: str) -> Any:
        """The stage's :class:`~autoglm_sdk.protocols.StageRunner`, or None when it runs eagerly."""
        return self.runners.get(stage)

    def frozen_copy(self) -> "PipelineModel":
        """An independent, frozen copy run eagerly on the main backend (a distillation teacher): the placement,
        whose runners hold sessions, is not copied."""
        placement, self.placement = self.placement, Placement(self.placement.main)
        try:
            copied = copy.deepcopy(self)
        finally:
            self.placement = placement
        return copied.eval().requires_grad_(False)

    def forward(self, samples: list[dict[str, Any]]) -> Prediction:
        if not samples:
            raise InputError("no samples to run the pipeline on")
        captured: dict[str, Any] = {}

        def call(stage: str, args: list[Any]) -> Any:
            placement = self.placement
            if placement.stages and stage in self.stage_objects:
                # stages on different devices: each gets its inputs on its own, and its own autocast
                backend = placement.stages.get(stage, placement.main)
                args = [to_device(a, backend.device) for a in args]
                if stage in placement.stages:
                    with backend.autocast():
                        return self._run(stage, args, captured)
            return self._run(stage, args, captured)

        outputs = self.scheduler.run(self.dag, {"data": samples}, call)
        if self._sink_call is not None:
            return outputs[SINK]
        sink = outputs[SINK]
        if len(self.members) and isinstance(sink, torch.Tensor):
            sink = self._ensemble_logits(samples, outputs, sink)
        return Prediction(sink if isinstance(sink, torch.Tensor) else sink.logits, captured.get("graph"), outputs)

    @torch.no_grad()
    def generate(self, samples: list[dict[str, Any]], **options: Any) -> list[str]:
        """The text a text decoder generates for each sample: every stage runs as in ``forward``, then the decoder's
        ``generate(inputs, **options)`` (options: see :class:`~autoglm_sdk.protocols.Decoder`)."""
        decoder = self.stage_objects[SINK]
        if not callable(getattr(decoder, "generate", None)):
            raise InputError(
                f"decoder {self.origins.get(SINK, type(decoder).__name__)} does not generate text",
                hint='use a text decoder (e.g. plugin = "causal-lm") with [pipeline] task = "generate"',
            )
        return self.run_sink(samples, lambda module, inputs: module.generate(inputs, **options))

    def run_sink(self, samples: list[dict[str, Any]], call: Callable[[Any, Any], Any]) -> Any:
        """Every stage runs as in ``forward``, then ``call(decoder, inputs)`` in place of the decoder's forward;
        its result (text generation, or a decoder's side head trained alone)."""
        self._sink_call = call
        try:
            return self(samples)
        finally:
            self._sink_call = None

    def _run(self, stage: str, args: list[Any], captured: dict[str, Any], module: Any = None) -> Any:
        """``stage`` on ``args``: its own module, or ``module`` (an ensemble member's copy, always run eagerly)."""
        runner = self.runners.get(stage) if self.placement.active and not self.training and module is None else None
        module = self.stage_objects[stage] if module is None else module
        if stage == SINK:
            captured["graph"] = args[0]
        port = self.ports.get(stage)
        try:
            if stage.startswith("encoders.") and port is not None and len(port.modalities) == 1:
                from autoglm_sdk.encoding import encode_present

                (modality,) = port.modalities
                out = encode_present(module, args[0], modality, port.dim, call=runner)
            elif stage in self.caches and runner is None:
                out = self._cached(stage, module, args[0])
            else:
                run = runner or module
                if stage == SINK and self._sink_call is not None:
                    run = lambda inputs: self._sink_call(module, inputs)  # noqa: E731
                out = run(args[0]) if len(args) == 1 else run(dict(zip(self.dag.inputs[stage], args)))
        except (AutoGLMError, KeyboardInterrupt):
            raise
        except Exception as exc:  # a plugin's bug: say whose, so the user knows where to report it
            raise StageFailed(
                f"{stage} {self.origins.get(stage, type(module).__name__)} failed: {type(exc).__name__}: {exc}",
                hint="a bug in that plugin or its config; --debug shows the traceback",
            ) from exc
        if self.check_widths:
            self._check_width(stage, out)
        return out

    def _cached(self, stage: str, module: Any, samples: list[dict[str, Any]]) -> Any:
        """The batch of each sample's kept graph, making the missing ones in one call (the contract's
        batch-consistency check is what makes a sample's graph the same whatever batch it came in)."""
        from autoglm_sdk.graph import SemanticGraph

        cache = self.caches[stage]
        missing = list({id(s): s for s in samples if id(s) not in cache}.values())
        if missing:  # one batched call, split back into one graph per sample
            if len(cache) + len(missing) > CACHE_LIMIT:
                cache.clear()
            for sample, graph in zip(missing, module(missing).to_data_list()):
                cache[id(sample)] = (sample, graph)
        return SemanticGraph.collate([cache[id(s)][1] for s in samples])

    def _check_width(self, stage: str, out: Any) -> None:
        """Hold a stage's output to the width its signature declared, so that a wrong width is blamed on the stage
        that made it rather than on the next one."""
        declared = self.ports.get(stage)
        width = None
        for value in (out, getattr(out, "x", None), getattr(out, "pooled", None)):
            if isinstance(value, torch.Tensor) and value.dim() >= 2:
                width = int(value.size(-1))
                break
        if declared is None or declared.dim is None or width is None or width == declared.dim:
            return
        raise StageMismatchError(
            f"{stage} {self.origins.get(stage, '')} produced outputs of width {width}, but its "
            f"signature declares {declared.describe()}",
            hint="fix the plugin's forward or its signature so that they agree",
        )


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
        return dataclasses.replace(
            value, **{f.name: map_tensors(getattr(value, f.name), fn) for f in dataclasses.fields(value) if f.init}
        )
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
        stages[key] = _create(section, ctx)
        if not callable(stages[key]):
            raise PluginLoadError(
                f"{key} {origin(section)}: {type(stages[key]).__name__} is not callable",
                hint="the SDK calls a stage object: subclass torch.nn.Module (its __call__ runs "
                "forward) or define __call__",
            )
    return stages


def origin(section: Any) -> str:
    """ "`plugin` (distribution version)": who to blame in an error about a manifest section."""
    from autoglm_sdk.registry import distribution_of

    dist, version = distribution_of(section.spec)
    return f"`{section.plugin}` ({dist} {version})".replace(" )", ")")


def _create(section: Any, ctx: BuildContext) -> Any:
    """Construct a section's plugin; a failure that is not the user's mistake names the plugin and distribution."""
    try:
        return section.spec.create(section.config, ctx)
    except AutoGLMError:
        raise
    except Exception as exc:
        raise PluginLoadError(
            f"{section.key} {origin(section)} could not be constructed: {type(exc).__name__}: {exc}",
            hint="a bug in that plugin or a broken install; --debug shows the traceback",
        ) from exc


def build_model(
    manifest: Manifest,
    dag: Dag,
    ports: dict[str, Port],
    task: TaskSpec,
    device: str = "cpu",
    seed: int | None = None,
    cache: bool = True,
) -> PipelineModel:
    """The pipeline's stages and objectives, constructed and wired (not yet fitted to data or placed); with
    ``cache``, cacheable builders fed by the data keep each sample's graph."""
    stages = construct_stages(manifest, dag, ports, task, device, seed)
    scheduler = manifest.scheduler.spec.create(manifest.scheduler.config, BuildContext(seed=manifest.pipeline.seed))
    objectives = {
        key: _create(
            section, BuildContext(inputs=dict(ports), task=task, seed=manifest.pipeline.seed, device=device, stage=key)
        )
        for key, section in manifest.objectives.items()
    }
    origins = {key: origin(manifest.stages[key]) for key in stages}
    cacheable = tuple(
        key
        for key in stages
        if "cacheable" in manifest.stages[key].spec.capabilities
        and getattr(stages[key], "cacheable", True)  # a configuration may make a cacheable plugin's output change
        and dag.inputs[key] == ("data",)
    )
    model = PipelineModel(dag, stages, scheduler, ports, objectives, origins, cacheable if cache else (), cacheable)
    for objective in model.objective_objects.values():  # objectives that work through a stage (a decoder's head)
        if callable(getattr(objective, "attach", None)):
            objective.attach(model)
    return model
