"""The contract between the core and its plugins. This module imports no torch.

A plugin has two halves:

* a light :class:`PluginSpec` (name, kind, pydantic ``Config``, capabilities,
  stage signature) that the entry point names. Importing it must not import
  torch, so ``autoglm manifest validate`` and ``autoglm plugins list --load``
  stay fast;
* an implementation class named by ``PluginSpec.factory`` (``"pkg.mod:Class"``),
  imported only when a pipeline is built. It is constructed as
  ``Class(config, ctx)`` and, for learnable kinds, is a ``torch.nn.Module``.

The split is the npe2 idea (metadata readable without importing plugin code)
applied one level down: metadata *and* config schema without importing torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from autoglm_sdk.graph import SemanticGraph

from autoglm_sdk.kinds import CONTRACT_VERSION, KIND_GROUPS, KINDS  # noqa: F401  (re-exported)

Modality = Literal["graph", "text", "image", "audio"]


class PluginConfig(BaseModel):
    """Base for every plugin ``Config``: unknown keys are errors, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


def PathField(default: Any, *, description: str, must_exist: bool = True) -> Any:  # noqa: N802 (reads as a type)
    """A config field holding a local file or directory. A relative path in a manifest is read from the
    manifest's folder (then the working directory); validation stores it absolute and, with ``must_exist``,
    refuses one that is not there. Without ``must_exist`` a value that is no existing path (a hub id) is left as
    written."""
    from pydantic import Field

    return Field(default, description=description, json_schema_extra={"local_path": must_exist})


#: task kinds a manifest may choose (``[pipeline] task``) -> the port type the decoder must produce for it
TASK_OUTPUTS = {"classify": "logits", "generate": "text", "summarise": "text", "extractive-qa": "spans"}


@dataclass(frozen=True)
class TaskSpec:
    """What the data asks the pipeline to predict.

    ``kind`` is the manifest's ``[pipeline] task``: ``classify`` (a label per graph or node, the default) or a
    text task (``generate``, ``summarise``: the sample field ``target`` holds the text to produce;
    ``extractive-qa``: a span of the input). Label names stay known for text tasks whose data has labels: the
    answer a generated sentence states is scored against them.
    """

    level: Literal["node", "graph"]
    num_classes: int
    label_names: tuple[str, ...] = ()
    metric: str = "accuracy"
    kind: str = "classify"
    target: str = ""

    @property
    def output(self) -> str:
        """The port type this task's decoder produces."""
        return TASK_OUTPUTS[self.kind]

    @property
    def textual(self) -> bool:
        """Whether the decoder answers each sample with text (written, or a span of the input): it returns a
        :class:`TextOutput` and has ``generate``."""
        return self.output in ("text", "spans")

    def label_name(self, index: int) -> str:
        return self.label_names[index] if index < len(self.label_names) else str(index)


@dataclass(frozen=True)
class Port:
    """What flows along one pipeline edge; ``None`` means "not known yet".

    ``type`` is one of ``samples`` (raw inputs from a DataSource), ``embeddings``
    (an encoder's output), ``semantic_graph`` (a graph builder's or reasoner's
    output), ``logits`` (a classifying decoder's output) or ``text`` (a language-model
    decoder's output: a :class:`TextOutput` in training, strings from ``generate``).
    """

    type: str
    modalities: frozenset[str] = frozenset()
    dim: int | None = None
    num_edge_types: int | None = None
    #: names of the edge types, when the producer knows them (for explanations)
    edge_type_names: tuple[str, ...] = ()
    #: extra node attributes the graph carries, e.g. ``query_pair`` (``is_source``/``is_target`` masks)
    attributes: frozenset[str] = frozenset()

    def with_(self, **changes: Any) -> "Port":
        return replace(self, **changes)

    def describe(self) -> str:
        parts = [self.type]
        if self.modalities:
            parts.append("modalities=" + ",".join(sorted(self.modalities)))
        if self.dim is not None:
            parts.append(f"dim={self.dim}")
        if self.num_edge_types is not None:
            parts.append(f"edge_types={self.num_edge_types}")
        if self.attributes:
            parts.append("attributes=" + ",".join(sorted(self.attributes)))
        return " ".join(parts)


class PortMismatch(Exception):
    """Raised by a signature function; the pipeline adds both stage names."""


@dataclass
class BuildContext:
    """What the build resolved for a stage before constructing it."""

    inputs: dict[str, Port] = field(default_factory=dict)
    task: TaskSpec | None = None
    seed: int = 0
    device: str = "cpu"
    stage: str = ""
    #: compressors only: ``finetune(model, epochs, lr) -> dict`` trains the whole pipeline on the training split
    #: (best validation epoch kept) and returns its figures; None where no training data is at hand
    finetune: Callable[..., dict[str, Any]] | None = None
    #: compressors only: training samples to measure activations on (calibration); None where none are at hand
    calibration: list[Any] | None = None
    #: compressors' ``restore`` only: the stored weights' shapes by state-dict key, for structures that shrank
    stored_shapes: Mapping[str, tuple[int, ...]] | None = None

    @property
    def input(self) -> Port:
        """The single upstream port (most stages have exactly one)."""
        if len(self.inputs) != 1:
            raise PortMismatch(f"expects exactly one input, got {sorted(self.inputs) or 'none'}")
        return next(iter(self.inputs.values()))


Signature = Callable[[Any, BuildContext], Port]


def require_input(ctx: BuildContext, port_type: str) -> Port:
    """The stage's single upstream port, which must carry ``port_type``."""
    port = ctx.input
    if port.type != port_type:
        raise PortMismatch(f"needs {port_type.replace('_', ' ')} input, got {port.type.replace('_', ' ')}")
    return port


def require_modality(ctx: BuildContext, modality: str) -> Port:
    """The stage's single upstream port, which must be samples carrying ``modality`` (an encoder's input)."""
    port = ctx.input
    if port.type != "samples" or modality not in port.modalities:
        if port.type == "samples":
            got = "samples carrying " + (",".join(sorted(port.modalities)) or "no modality")
        else:
            got = port.type.replace("_", " ")
        raise PortMismatch(f"needs samples that carry {modality} (modality `{modality}`), got {got}")
    return port


def stage_seed(ctx: BuildContext) -> int:
    """A seed for one stage's initial weights: from the pipeline seed and the stage name only, so
    a stage's weights do not depend on how much randomness other stages drew before it."""
    import zlib

    return zlib.crc32(f"{ctx.seed}/{ctx.stage}".encode())


def reasoner_signature(config: Any, ctx: BuildContext) -> Port:
    """The usual reasoner signature: a semantic graph in, the same graph with ``config.hidden``-sized states out."""
    return require_input(ctx, "semantic_graph").with_(dim=config.hidden)


@dataclass(frozen=True)
class PluginSpec:
    """Everything the SDK needs to know about a plugin without importing its code.

    ``signature(config, ctx)`` returns the stage's output :class:`Port` given its
    inputs in ``ctx.inputs`` or raises :class:`PortMismatch` saying why they do
    not fit. ``capabilities`` select contract checks (see
    :mod:`autoglm_sdk.testing`); ``expected_failures`` maps a check name to the
    reason it is known to fail.
    """

    name: str
    kind: str
    config: type[BaseModel]
    factory: str
    summary: str = ""
    signature: Signature | None = None
    capabilities: frozenset[str] = frozenset()
    expected_failures: Mapping[str, str] = field(default_factory=dict)
    contract_version: int = CONTRACT_VERSION

    def __post_init__(self) -> None:
        if self.kind not in KIND_GROUPS:
            raise ValueError(f"unknown plugin kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        if ":" not in self.factory:
            raise ValueError(f"factory must look like 'package.module:Class', got {self.factory!r}")

    def load_class(self) -> type:
        module_name, _, attr = self.factory.partition(":")
        module = importlib.import_module(module_name)
        return getattr(module, attr)

    def create(self, config: BaseModel | Mapping[str, Any] | None = None, ctx: BuildContext | None = None) -> Any:
        """Validate ``config`` against the spec's Config and construct the implementation. The spec is where a
        plugin's identity is written: an instance whose class declares no ``name`` or ``kind`` gets the spec's."""
        if not isinstance(config, BaseModel):
            config = self.config.model_validate(dict(config or {}))
        instance = self.load_class()(config, ctx or BuildContext())
        for attr, value in (("name", self.name), ("kind", self.kind)):
            if getattr(instance, attr, None) is None:
                setattr(instance, attr, value)
        return instance

    def output_port(self, config: BaseModel, ctx: BuildContext) -> Port:
        if self.signature is None:
            raise PortMismatch(f"{self.kind} `{self.name}` declares no stage signature")
        return self.signature(config, ctx)


# ---------------------------------------------------------------------------
# Protocols. Implementations are constructed as ``Cls(config, ctx)`` and carry
# ``name``, ``kind`` and ``Config`` (the same class as their spec's config).
# The SDK calls a stage object (``stage(inputs)``): a torch.nn.Module subclass
# implements ``forward`` and gets ``__call__`` from Module; any other class
# defines ``__call__`` itself.
# ---------------------------------------------------------------------------

Sample = dict  # keys: modality names ("graph", "text", ...) and "label" for graph-level tasks


@dataclass
class Dataset:
    """A DataSource's output: the task, the port its samples fill and the splits.

    For node-level tasks each sample's ``graph`` carries ``y`` and a boolean
    ``label_mask`` saying which nodes are scored in that split.
    """

    task: TaskSpec
    port: Port
    splits: dict[str, list[Sample]]
    fingerprint: str
    #: a sample key to break metrics down by (``"hops"`` for kinship), or None
    group_key: str | None = None
    #: named ways to degrade a test sample, ``fn(sample, rng) -> sample`` (noise, occlusion), for the report
    perturbations: dict[str, Callable[[dict, Any], dict]] = field(default_factory=dict)


class StageLifecycle(Protocol):
    """Optional methods any stage may define; the build calls those that exist.

    * ``fit(dataset)``: after construction, before training (a tokenizer trains on
      the training text, a vocabulary is collected); may create parameters.
    * ``artifact_files() -> dict[str, bytes]``: extra files (JSON, text; never
      pickle) stored in the artifact under ``stages/<stage>/``.
    * ``load_artifact_files(files)``: on load, instead of ``fit``, before weights.
    * ``report() -> dict``: figures for the build report (parse counts, ...).
    * ``explain(graph) -> dict``: (graph builders) what one input became, for
      ``autoglm run`` answers (nodes, typed edges, unparsed sentences).
    * ``auxiliary_loss() -> Tensor | None``: a term of the training loss the stage
      computed in its last forward pass (a learned graph's regularisers); it
      becomes an objective named by the stage key (see :class:`Objective`).
    """


@runtime_checkable
class DataSource(Protocol):
    name: str
    kind: str

    def load(self) -> Dataset: ...


@runtime_checkable
class ModalityEncoder(Protocol):
    """Raw inputs of one modality -> token/patch/frame states plus a pooled vector."""

    name: str
    kind: str
    modality: str

    def preprocess(self, raw: list[Any]) -> Any: ...

    def __call__(self, batch: Any) -> Any: ...


@runtime_checkable
class GraphBuilder(Protocol):
    """Samples (and encoder outputs) -> a batched :class:`~autoglm_sdk.graph.SemanticGraph`."""

    name: str
    kind: str

    def __call__(self, samples: Any) -> "SemanticGraph": ...


@runtime_checkable
class Reasoner(Protocol):
    """Message passing: a SemanticGraph in, the same graph with ``x`` = node states out."""

    name: str
    kind: str

    def __call__(self, graph: "SemanticGraph") -> "SemanticGraph": ...


@runtime_checkable
class Decoder(Protocol):
    """Node states -> logits ``[num_nodes, C]`` (node level) or ``[num_graphs, C]`` (graph level).

    A decoder for text tasks (capabilities ``task:generate``, ``task:summarise``, ``task:extractive-qa``) returns a
    :class:`TextOutput` instead: its loss on the samples' target text (teacher-forced tokens, or a span's start and
    end) is the task's loss. It also defines
    ``generate(inputs, **options) -> list[str]`` (options: ``max_new_tokens``, ``min_new_tokens``, ``num_beams``,
    ``do_sample``, ``temperature``, ``top_p``, ``stop``, ``use_cache``, ``on_text``: a callback for streamed text).
    """

    name: str
    kind: str

    def __call__(self, graph: "SemanticGraph") -> "torch.Tensor": ...


@dataclass
class TextOutput:
    """A text decoder's forward pass on samples with target text: the mean cross-entropy over target tokens
    (``loss``), how many target tokens it predicted right and how many there were (teacher forcing), and the
    token logits ``[B, T, V]``."""

    loss: "torch.Tensor"
    correct_tokens: int
    target_tokens: int
    logits: "torch.Tensor"


def supported_tasks(capabilities: frozenset[str]) -> list[str]:
    """The tasks a decoder declares as capabilities ``task:KIND``; a decoder declaring none classifies."""
    tasks = [c.split(":", 1)[1] for c in sorted(capabilities) if c.startswith("task:")]
    return tasks or ["classify"]


@runtime_checkable
class Scheduler(Protocol):
    """Decides the order (and, in richer schedulers, the placement) of DAG stages."""

    name: str
    kind: str

    def run(self, dag: Any, feeds: dict[str, Any], call: Callable[[str, list[Any]], Any]) -> dict[str, Any]: ...


@runtime_checkable
class Compressor(Protocol):
    name: str
    kind: str

    def apply(self, model: Any, ctx: Any) -> Any: ...


@dataclass(frozen=True)
class BackendStatus:
    """A backend's probe. ``installed``: its library imports; ``built``: that
    library was compiled with support for the device; ``available``: a device is
    present now. ``reason`` explains the first of these that is false."""

    name: str
    installed: bool
    built: bool
    available: bool
    device: str | None = None
    reason: str = ""
    capabilities: Mapping[str, Any] = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        return self.installed and self.built and self.available


@runtime_checkable
class HardwareBackend(Protocol):
    name: str
    kind: str

    def probe(self) -> BackendStatus: ...

    @property
    def device(self) -> str: ...

    def prepare(self, module: Any) -> Any: ...

    def autocast(self) -> Any: ...


@runtime_checkable
class Objective(Protocol):
    """One term of the training loss, weighted and reported on its own line.

    The trainer minimises ``sum(weight * loss(pred, batch))`` over its objectives:
    the task's classification loss, each stage's ``auxiliary_loss()``, the
    manifest's ``[objectives.NAME]`` sections (kind ``objective``) and what a
    compressor adds while it fine-tunes (distillation). ``loss`` returns None when
    the term has nothing to say about a batch; it is constructed with ``ctx.inputs``
    holding every stage's port (and the data's, key ``data``). Optional:
    ``pretrain(model, session, seed, progress) -> dict`` runs once on a fresh model
    before the pipeline trains (its figures go to the report; ``lr_scales`` then
    slows stages down); ``prepare_batch(batch, generator)`` changes each training
    batch (modality dropout); ``validation_score(accuracy_of, val, accuracy)``
    replaces accuracy as what the best epoch is chosen on; ``attach(model)`` is called once the pipeline is made
    (an objective that works through a stage keeps it, not registered as a submodule). An ``nn.Module``
    objective's parameters train and are saved with the pipeline.
    """

    name: str
    weight: float

    def loss(self, pred: Any, batch: list[dict[str, Any]]) -> "torch.Tensor | None": ...


@runtime_checkable
class StageRunner(Protocol):
    """Runs one stage instead of its eager ``forward`` once the weights are final (an ONNX Runtime session, a
    ``torch.compile``'d module); made by a backend's ``wrap_stage``. ``capabilities`` say what else it can do
    now (``"int8"``: ``quantize_int8(skip)`` makes it run the stage in INT8 at its next export; compressors ask).
    ``invalidate()`` drops what was exported or compiled (the weights are about to change); ``describe()`` gives
    JSON figures for the report and ``summary()`` one line; ``deployed_bytes()`` the size of what it deploys in
    place of the stage's weights (an ONNX file), or None."""

    capabilities: frozenset[str]

    def __call__(self, inputs: Any) -> Any: ...

    def invalidate(self) -> None: ...

    def describe(self) -> dict[str, Any]: ...

    def summary(self) -> str: ...

    def deployed_bytes(self) -> int | None: ...


PROTOCOLS: dict[str, type] = {
    "data": DataSource,
    "encoder": ModalityEncoder,
    "graph_builder": GraphBuilder,
    "reasoner": Reasoner,
    "decoder": Decoder,
    "scheduler": Scheduler,
    "compressor": Compressor,
    "backend": HardwareBackend,
    "objective": Objective,
}
