"""Contract checks. Each is a function of a :class:`Subject` that raises
``AssertionError`` on failure or :class:`Skip` when it does not apply here, and
may return a short note that is shown with a pass (what it measured).

Which checks run is decided by the plugin's kind and its spec's
``capabilities`` (``learnable`` selects the gradient check, for example), as
scikit-learn's estimator tags do for its estimator checks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable

from autoglm_sdk.errors import AutoGLMError
from autoglm_sdk.protocols import PROTOCOLS, BackendStatus, BuildContext, Port
from autoglm_sdk.testing import fixtures

#: a bound on the plugin's own import time (seconds), the SDK's already done. Generous on purpose: a spec
#: module takes milliseconds, and a loaded machine must not fail a plugin; heavy imports are caught by name.
LIGHT_IMPORT_SECONDS = 1.0
#: modules an entry module must not import: each costs a second or more
HEAVY_MODULES = ("torch", "torch_geometric", "transformers", "timm", "torchaudio", "torchvision")
#: imported before the entry module, so that what the SDK costs is not counted as the plugin's
SDK_MODULES = ("pydantic", "autoglm_sdk", "autoglm_sdk.protocols", "autoglm_sdk.plugin")


class Skip(Exception):
    """The check does not apply (device absent, capability missing)."""


@dataclass
class Subject:
    """The plugin under test: its spec, the kit config overrides and helpers."""

    kind: str
    name: str
    spec: Any
    config_overrides: dict[str, Any] = field(default_factory=dict)

    def config(self) -> Any:
        return self.spec.config.model_validate(self.config_overrides)

    def ctx(self, seed: int = 0) -> BuildContext:
        return fixtures.context_for(self.kind, self.spec, self.config(), seed)

    def make(self, seed: int = 0) -> Any:
        """A fresh instance; one with a ``fit`` method is fitted to a small fixture dataset, as a build does."""
        import torch

        torch.manual_seed(seed)
        ctx = self.ctx(seed)
        instance = self.spec.create(self.config(), ctx)
        if callable(getattr(instance, "fit", None)):
            instance.fit(fixtures.dataset_for(ctx, seed=seed))
        return instance

    def output_port(self) -> Port:
        return self.spec.output_port(self.config(), self.ctx())

    @property
    def writes_text(self) -> bool:
        return fixtures.writes_text(self.kind, self.spec)

    def inputs(self, count: int = 3, seed: int = 0) -> Any:
        """The standard input for this kind (a batch for reasoners/decoders, samples for builders and encoders;
        for a text decoder, ``{"reasoner": batch, "data": samples}``)."""
        if self.writes_text:
            from autoglm_sdk.graph import SemanticGraph

            samples = fixtures.text_samples(count, seed)
            return {"reasoner": SemanticGraph.collate(fixtures.text_graphs(samples, seed)), "data": samples}
        if self.kind in ("reasoner", "decoder"):
            from autoglm_sdk.graph import SemanticGraph

            return SemanticGraph.collate(fixtures.random_graphs(count, seed=seed))
        if self.kind in ("graph_builder", "encoder"):
            if self._reads_encoders():
                return fixtures.batch_encoder_outputs(fixtures.encoder_outputs(self.ctx().inputs, count, seed))
            return fixtures.samples_for(self.ctx().input, count, seed)
        raise Skip(f"no standard input for kind {self.kind}")

    def _reads_encoders(self) -> bool:
        return self.kind == "graph_builder" and all(p.type == "embeddings" for p in self.ctx().inputs.values())

    def single_inputs(self, count: int = 3, seed: int = 0) -> list[Any]:
        if self.writes_text:
            from autoglm_sdk.graph import SemanticGraph

            samples = fixtures.text_samples(count, seed)
            graphs = fixtures.text_graphs(samples, seed)
            return [{"reasoner": SemanticGraph.collate([g]), "data": [s]} for g, s in zip(graphs, samples)]
        if self.kind in ("reasoner", "decoder"):
            from autoglm_sdk.graph import SemanticGraph

            return [SemanticGraph.collate([g]) for g in fixtures.random_graphs(count, seed=seed)]
        if self._reads_encoders():
            return [
                fixtures.batch_encoder_outputs([s]) for s in fixtures.encoder_outputs(self.ctx().inputs, count, seed)
            ]
        return [[s] for s in fixtures.samples_for(self.ctx().input, count, seed)]

    @property
    def learnable(self) -> bool:
        return "learnable" in self.spec.capabilities


@dataclass(frozen=True)
class Check:
    name: str
    kinds: frozenset[str]
    fn: Callable[[Subject], str | None]
    requires: frozenset[str] = frozenset()
    doc: str = ""


CHECKS: list[Check] = []
ALL = frozenset(PROTOCOLS)
FORWARD_KINDS = frozenset({"reasoner", "decoder", "graph_builder", "encoder"})


def check(kinds: frozenset[str] = ALL, requires: tuple[str, ...] = ()) -> Callable:
    def register(fn: Callable[[Subject], str | None]) -> Callable[[Subject], str | None]:
        name = fn.__name__.removeprefix("check_")
        CHECKS.append(Check(name, frozenset(kinds), fn, frozenset(requires), (fn.__doc__ or "").strip()))
        return fn

    return register


def checks_for(kind: str, capabilities: frozenset[str]) -> list[Check]:
    return [c for c in CHECKS if kind in c.kinds and c.requires <= capabilities]


def _output_tensor(out: Any) -> Any:
    """The tensor a stage produced: ``x`` of a graph, ``pooled`` of an encoder's output, a text decoder's logits
    at each sequence's last position (left-padded sequences end together), or the tensor itself."""
    import torch

    from autoglm_sdk.encoding import EncoderOutput
    from autoglm_sdk.protocols import TextOutput

    if isinstance(out, EncoderOutput):
        return out.pooled
    if isinstance(out, TextOutput):
        return out.logits[:, -1]
    return out if isinstance(out, torch.Tensor) else out.x


# --------------------------------------------------------------- every kind


_OWN_IMPORT = """\
import importlib, json, sys, time
from importlib import metadata
for module in {sdk!r}:
    importlib.import_module(module)
entry = next(e for e in metadata.entry_points(group={group!r}) if e.name == {name!r})
before = set(sys.modules)
started = time.perf_counter()
entry.load()
seconds = time.perf_counter() - started
print(json.dumps({{
    "seconds": seconds,
    "new": sorted(set(sys.modules) - before),
    "heavy": [m for m in {heavy!r} if m in sys.modules and m not in before],
    "heavy_before": [m for m in {heavy!r} if m in before],
}}))
"""


def own_import(group: str, name: str) -> dict[str, Any]:
    """Load entry point ``name`` of ``group`` in a fresh interpreter where the SDK is already imported.

    Returns what the plugin's own import cost: ``seconds``, ``new`` (the modules it added), ``heavy`` (the
    :data:`HEAVY_MODULES` among them) and ``heavy_before`` (those the SDK had imported already, which is an
    SDK bug: it hides whether the plugin imports them).
    """
    code = _OWN_IMPORT.format(sdk=SDK_MODULES, group=group, name=name, heavy=HEAVY_MODULES)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise AssertionError(f"entry module failed to import: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


@check()
def check_light_import(s: Subject) -> str:
    """The entry module imports without torch (or another heavy library), and quickly once the SDK is imported."""
    from importlib import metadata

    from autoglm_sdk.kinds import KIND_GROUPS

    group = KIND_GROUPS[s.kind]
    if not any(ep.name == s.name for ep in metadata.entry_points(group=group)):
        raise Skip("not registered through an entry point (import path plugin)")
    result = own_import(group, s.name)
    assert not result["heavy_before"], f"the SDK itself imported {result['heavy_before']}; cannot judge the plugin"
    assert not result["heavy"], (
        f"entry module imports {', '.join(result['heavy'])}; move model code behind PluginSpec.factory"
    )
    count, seconds = len(result["new"]), result["seconds"]
    summary = f"{count} new module{'' if count == 1 else 's'} in {seconds * 1000:.0f} ms"
    packages = sorted({m.partition(".")[0] for m in result["new"]})
    assert seconds < LIGHT_IMPORT_SECONDS, (
        f"entry module took {seconds:.2f}s to import, the SDK's own import not counted (limit "
        f"{LIGHT_IMPORT_SECONDS}s): {summary}, from {', '.join(packages[:10])}"
    )
    return summary


@check()
def check_config_schema(s: Subject) -> None:
    """Config has a JSON schema, forbids unknown keys, documents and defaults every field."""
    from pydantic import ValidationError

    config = s.spec.config
    schema = config.model_json_schema()
    assert schema.get("type") == "object", "Config schema is not an object"
    assert schema.get("additionalProperties") is False, "Config must forbid unknown keys (extra='forbid')"
    undocumented = [k for k, f in config.model_fields.items() if not f.description]
    assert not undocumented, f"fields without a description: {undocumented}"
    required = [k for k, f in config.model_fields.items() if f.is_required()]
    assert not required, f"fields without a default: {required}"
    default = config()
    assert config.model_validate(default.model_dump(mode="json")) == default, "Config does not round-trip through JSON"
    try:
        config.model_validate({"__not_a_key__": 1})
    except ValidationError:
        pass
    else:
        raise AssertionError("Config accepted an unknown key")


@check()
def check_implementation(s: Subject) -> None:
    """The factory class's ``name``, ``kind`` and ``Config``, where it declares them, are the spec's (instances the
    SDK makes get the spec's name and kind when their class declares none)."""
    cls = s.spec.load_class()
    for attr, want in (("name", s.name), ("kind", s.kind)):
        got = getattr(cls, attr, None)
        assert got in (None, want), f"{cls.__name__}.{attr} is {got!r}, the spec says {want!r} (or leave it out)"
    config = getattr(cls, "Config", None)
    assert config in (None, s.spec.config), f"{cls.__name__}.Config must be the spec's config class (or left out)"


@check()
def check_construct_defaults(s: Subject) -> None:
    """Constructs from the default config (plus the kit's overrides) and satisfies its protocol."""
    instance = s.make()
    protocol = PROTOCOLS[s.kind]
    assert isinstance(instance, protocol), f"{type(instance).__name__} does not implement {protocol.__name__}"
    if s.learnable:
        import torch

        assert isinstance(instance, torch.nn.Module), "learnable plugins must be torch.nn.Module subclasses"


# ----------------------------------------------------- stages with a forward


def _not_callable(cls: type, name: str) -> str | None:
    """Why the SDK cannot call instances of ``cls`` as a stage (``stage(inputs)``), or None when it can."""
    if any("__call__" in vars(klass) for klass in cls.__mro__):
        return None
    has = "defines forward but" if callable(getattr(cls, "forward", None)) else "defines no forward and"
    return (
        f"`{name}`'s class {cls.__name__} {has} is not callable: "
        "subclass torch.nn.Module (which calls forward) or define __call__"
    )


@check(FORWARD_KINDS)
def check_callable(s: Subject) -> None:
    """The SDK calls a stage object, ``stage(inputs)``, so its class is an nn.Module or defines ``__call__``."""
    problem = _not_callable(s.spec.load_class(), s.name)
    if problem:  # raised, not asserted: pytest's assertion rewriting would append its own lines to the hint
        raise AssertionError(problem)


def _run(instance: Any, inputs: Any) -> Any:
    import torch

    # the same clear message in every check that runs the stage, not "object is not callable"
    problem = _not_callable(type(instance), getattr(instance, "name", type(instance).__name__))
    if problem:
        raise AssertionError(problem)
    if isinstance(instance, torch.nn.Module):
        instance.eval()
    with torch.no_grad():
        return instance(inputs)


@check(FORWARD_KINDS)
def check_output_shape(s: Subject) -> None:
    """On the standard fixtures the output has the declared port's type, size and dtype."""
    import torch

    from autoglm_sdk.graph import check_graph

    port = s.output_port()
    out = _run(s.make(), s.inputs())
    if port.type == "embeddings":
        _check_encoder_output(out, port, batch=3)
        return
    if port.type in ("text", "spans"):
        _check_text_output(out, s.make(), s.inputs())
        return
    if port.type == "logits":
        assert isinstance(out, torch.Tensor) and out.dim() == 2, (
            f"logits must be a 2-D tensor, got {type(out).__name__}"
        )
        assert out.size(0) == 3, f"expected one row per graph (3), got {out.size(0)}"
        assert port.dim is None or out.size(1) == port.dim, f"expected {port.dim} classes, got {out.size(1)}"
        assert out.is_floating_point()
        return
    check_graph(out, dim=port.dim, num_edge_types=port.num_edge_types, who=f"{s.name} output")
    assert getattr(out, "batch", None) is not None, "output graph lost its batch vector"


def _check_text_output(out: Any, instance: Any, inputs: Any) -> None:
    """A text decoder's forward scores the target tokens; its ``generate`` gives one string per sample."""
    import torch

    from autoglm_sdk.protocols import TextOutput

    assert isinstance(out, TextOutput), f"a text decoder must return a TextOutput, got {type(out).__name__}"
    assert out.logits.dim() == 3 and out.logits.size(0) == 3, f"logits must be [3, T, V], got {tuple(out.logits.shape)}"
    assert out.target_tokens > 0, "no target token was scored, though every sample carries target text"
    assert 0 <= out.correct_tokens <= out.target_tokens
    assert torch.isfinite(out.loss) and float(out.loss) > 0, f"loss must be finite and positive, got {out.loss}"
    texts = instance.generate(inputs, max_new_tokens=4)
    assert isinstance(texts, list) and len(texts) == 3 and all(isinstance(t, str) for t in texts), (
        f"generate must return one string per sample, got {texts!r}"
    )


def _graph_of(inputs: Any) -> Any:
    """The graph inside a decoder's input (a text decoder's is beside the samples)."""
    return inputs["reasoner"] if isinstance(inputs, dict) else inputs


def _check_encoder_output(out: Any, port: Port, batch: int) -> None:
    import torch

    from autoglm_sdk.encoding import EncoderOutput

    assert isinstance(out, EncoderOutput), f"an encoder must return an EncoderOutput, got {type(out).__name__}"
    states, mask, pooled = out.states, out.mask, out.pooled
    assert states.dim() == 3 and states.size(0) == batch, f"states must be [{batch}, T, D], got {tuple(states.shape)}"
    assert mask.dtype == torch.bool and tuple(mask.shape) == tuple(states.shape[:2]), (
        f"mask must be a bool [B, T] matching states, got {mask.dtype} {tuple(mask.shape)}"
    )
    assert mask.any(dim=1).all(), "every input must have at least one real (unmasked) position"
    assert tuple(pooled.shape) == (batch, states.size(2)), f"pooled must be [{batch}, D], got {tuple(pooled.shape)}"
    assert port.dim is None or pooled.size(1) == port.dim, f"port says dim {port.dim}, pooled has {pooled.size(1)}"
    assert states.is_floating_point() and pooled.is_floating_point(), "states and pooled must be floating point"


@check(FORWARD_KINDS)
def check_batch_consistency(s: Subject) -> None:
    """A sample alone and the same sample inside a batch give the same output."""
    import torch

    instance = s.make()
    batched = _output_tensor(_run(instance, s.inputs()))
    singles = [_output_tensor(_run(instance, one)) for one in s.single_inputs()]
    together = torch.cat(singles, dim=0)
    assert together.shape == batched.shape, (
        f"shapes differ: alone {tuple(together.shape)}, batched {tuple(batched.shape)}"
    )
    diff = (together - batched).abs().max().item()
    assert diff < 1e-5, f"outputs differ by {diff:.2e} between single and batched inputs"


@check(FORWARD_KINDS)
def check_seed_determinism(s: Subject) -> None:
    """The same seed gives the same output."""
    import torch

    a = _output_tensor(_run(s.make(seed=1), s.inputs()))
    b = _output_tensor(_run(s.make(seed=1), s.inputs()))
    assert torch.equal(a, b), "two constructions with the same seed gave different outputs"


@check(FORWARD_KINDS, requires=("learnable",))
def check_gradients(s: Subject) -> None:
    """A loss on the output sends a finite gradient to every trainable parameter."""
    import torch

    instance = s.make()
    instance.train()
    raw = instance(s.inputs())
    loss = (_output_tensor(raw).float() ** 2).mean()
    if getattr(raw, "target_tokens", 0):  # a text decoder's own loss on its targets reaches what the last row may not
        loss = loss + raw.loss.float()
    if getattr(raw, "embedding", None) is not None:  # a projection head is trained through the embedding
        loss = loss + raw.embedding.float().sum()
    if getattr(raw, "edge_weight", None) is not None:  # a learned graph is trained through its edge weights
        loss = loss + raw.edge_weight.float().sum()
    if callable(getattr(instance, "auxiliary_loss", None)) and instance.auxiliary_loss() is not None:
        loss = loss + instance.auxiliary_loss()
    loss.backward()
    missing = [n for n, p in instance.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient reached: {missing[:5]}"
    bad = [n for n, p in instance.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradients: {bad[:5]}"
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in instance.parameters()), "all gradients are zero"


@check(FORWARD_KINDS, requires=("learnable",))
def check_state_dict_roundtrip(s: Subject) -> None:
    """Weights saved as safetensors and loaded into a fresh instance give identical outputs."""
    import torch
    from safetensors.torch import load_model, save_model

    first = s.make(seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "weights.safetensors")
        save_model(first, path)  # what `autoglm build` does: shared tensors stored once
        second = s.make(seed=2)
        missing, unexpected = load_model(second, path, strict=True)
    a, b = _output_tensor(_run(first, s.inputs())), _output_tensor(_run(second, s.inputs()))
    assert torch.equal(a, b), "outputs differ after a safetensors round-trip"


@check(FORWARD_KINDS, requires=("learnable",))
def check_device_move(s: Subject) -> None:
    """Moves with .to(): float64 on the CPU (catches unregistered tensors), and CUDA when present."""
    import torch

    instance = s.make()
    stray = [
        f"{prefix + '.' if prefix else ''}{attr}"
        for prefix, module in instance.named_modules()
        for attr, value in vars(module).items()
        if isinstance(value, torch.Tensor) and not isinstance(value, torch.nn.Parameter)
    ]
    assert not stray, f"tensor attributes that .to() will not move: {stray[:5]}; register them as buffers"
    instance = instance.to(torch.float64)
    inputs = s.inputs()
    if s.kind in ("reasoner", "decoder"):
        _graph_of(inputs).x = _graph_of(inputs).x.double()
    else:
        if isinstance(inputs, dict):  # encoder outputs feeding a multimodal builder
            for out in inputs.values():
                out.states, out.pooled = out.states.double(), out.pooled.double()
        for sample in inputs if isinstance(inputs, list) else []:
            if "graph" in sample:
                sample["graph"].x = sample["graph"].x.double()
    out = _output_tensor(_run(instance, inputs))
    assert out.dtype == torch.float64, (
        f"after .to(float64) the output is {out.dtype}: a tensor is not a parameter or buffer"
    )
    if torch.cuda.is_available():
        moved = s.make().to("cuda")
        gpu_inputs = s.inputs()
        gpu_inputs = gpu_inputs.to("cuda") if hasattr(gpu_inputs, "to") else gpu_inputs
        out = _output_tensor(_run(moved, gpu_inputs))
        assert out.device.type == "cuda", f"output stayed on {out.device}"


@check(FORWARD_KINDS)
def check_bad_input(s: Subject) -> None:
    """Malformed input raises an AutoGLMError subclass whose message says what was wrong."""
    import torch

    instance = s.make()
    if s.kind in ("reasoner", "decoder"):
        bad = s.inputs()
        graph = _graph_of(bad)
        graph.x = torch.randn(graph.x.size(0), fixtures.FEATURE_DIM + 5)
        expect = str(fixtures.FEATURE_DIM)
    else:
        bad = [{"label": 0}]  # a sample carrying none of the modalities the builder or encoder reads
        expect = ""
    try:
        _run(instance, bad)
    except AutoGLMError as exc:
        assert len(exc.message) > 10, f"error message too short to help: {exc.message!r}"
        assert expect in exc.message, f"message should name the expected size {expect}: {exc.message!r}"
        return
    except Exception as exc:
        raise AssertionError(f"bad input raised {type(exc).__name__} ({exc}), not an AutoGLMError") from exc
    raise AssertionError("bad input was accepted silently")


# ------------------------------------------------------------------- data


@check(frozenset({"data"}))
def check_data_splits(s: Subject) -> None:
    """load() returns non-empty train/val/test splits whose samples fill the declared port."""
    dataset = s.make().load()
    for split in ("train", "val", "test"):
        assert dataset.splits.get(split), f"split `{split}` is empty"
    task, port = dataset.task, dataset.port
    assert task.num_classes >= 2, f"num_classes must be >= 2, got {task.num_classes}"
    for split, samples in dataset.splits.items():
        for sample in samples[:50]:
            missing = [m for m in port.modalities if m not in sample]
            assert not missing, f"{split} sample lacks declared modality {missing}"
            if task.level == "graph":
                assert 0 <= int(sample["label"]) < task.num_classes, f"label {sample['label']} out of range"
            else:
                g = sample["graph"]
                assert int(g.y.max()) < task.num_classes, "node label out of range"
                assert g.label_mask.dtype.is_floating_point is False and g.label_mask.any(), (
                    f"{split}: empty label_mask"
                )
            if "graph" in sample and port.dim is not None:
                assert sample["graph"].x.size(1) == port.dim, (
                    f"graph features have size {sample['graph'].x.size(1)}, port says {port.dim}"
                )


@check(frozenset({"data"}))
def check_data_determinism(s: Subject) -> None:
    """The same seed gives the same data (fingerprint); another seed gives other data."""
    a, b = s.make(seed=3).load(), s.make(seed=3).load()
    assert a.fingerprint == b.fingerprint, "same seed, different fingerprints"
    if "static" not in s.spec.capabilities:
        c = s.make(seed=4).load()
        assert c.fingerprint != a.fingerprint, (
            "different seeds gave identical data (declare capability 'static' if intended)"
        )


# --------------------------------------------------------------- backends


@check(frozenset({"backend"}))
def check_backend_probe(s: Subject) -> None:
    """probe() never raises and explains every unavailable state."""
    status = s.make().probe()
    assert isinstance(status, BackendStatus), f"probe() returned {type(status).__name__}"
    if not status.usable:
        assert status.reason, "an unusable backend must say why in `reason`"
    if status.available:
        assert status.installed, "available implies installed"


@check(frozenset({"backend"}))
def check_backend_prepare(s: Subject) -> None:
    """On a usable backend, prepare() places a module on its device and autocast() is a context manager."""
    import torch

    backend = s.make()
    status = backend.probe()
    if not status.usable:
        raise Skip(f"{s.name} is not usable here: {status.reason}")
    module = backend.prepare(torch.nn.Linear(4, 2))
    x = torch.randn(3, 4, device=backend.device)
    with backend.autocast():
        y = module(x)
    assert y.device.type == torch.device(backend.device).type, f"output on {y.device}, backend device {backend.device}"


@check(frozenset({"backend"}))
def check_backend_stage_runner(s: Subject) -> None:
    """A backend that runs stages its own way (``wrap_stage``) answers like eager PyTorch, before and after
    ``invalidate()`` (new weights), and describes itself."""
    import torch

    backend = s.make()
    if not hasattr(backend, "wrap_stage"):
        raise Skip(f"{s.name} runs stages eagerly (no wrap_stage)")
    status = backend.probe()
    if not status.usable:
        raise Skip(f"{s.name} is not usable here: {status.reason}")
    torch.manual_seed(0)
    stage = backend.prepare(torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))).eval()
    runner = backend.wrap_stage("stage", stage, {}, explicit=True)
    with torch.no_grad():
        for rows in (4, 7):
            x = torch.randn(rows, 6, device=backend.device)
            got, want = runner(x), stage(x)
            assert got.shape == want.shape, f"runner gave shape {tuple(got.shape)}, eager {tuple(want.shape)}"
            assert torch.allclose(got.float().cpu(), want.float().cpu(), atol=1e-3), "runner differs from eager"
        runner.invalidate()
        stage[0].weight.mul_(2)
        x = torch.randn(5, 6, device=backend.device)
        assert torch.allclose(runner(x).float().cpu(), stage(x).float().cpu(), atol=1e-3), (
            "after invalidate() the runner still uses the old weights"
        )
    described = runner.describe()
    assert described.get("backend") == s.name, f"describe() names backend {described.get('backend')!r}"


# ------------------------------------------------------------- compressors


def _compressible() -> Any:
    """A two-stage model the way compressors see a pipeline: ``stage_objects``, a forward through them, and the
    pipeline methods a compressor may call (``runner``: none here; ``frozen_copy``: a distillation teacher)."""
    import copy

    import torch
    from torch import nn

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stages = nn.ModuleDict(
                {"embed": nn.Embedding(20, 8), "mlp": nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 4))}
            )
            self.stage_objects = dict(self.stages)

        def forward(self, ids: Any) -> Any:
            return self.stage_objects["mlp"](self.stage_objects["embed"](ids).mean(1))

        def runner(self, stage: str) -> None:
            return None

        def frozen_copy(self) -> nn.Module:
            return copy.deepcopy(self).eval().requires_grad_(False)

    torch.manual_seed(0)
    return Model()


@check(frozenset({"compressor"}))
def check_compressor_apply_and_restore(s: Subject) -> None:
    """apply() leaves a model that runs and answers close to the original; ``restore()`` (if any) rebuilds the
    compressed structure on a fresh model so that the compressed weights load into it exactly."""
    import torch

    from autoglm_sdk.protocols import BuildContext

    ids = torch.randint(0, 20, (6, 5))
    model = _compressible().eval()
    with torch.no_grad():
        want = model(ids)
    # a recovery fine-tune would need a dataset: the kit's stands in with one that trains nothing
    ctx = BuildContext(seed=0, stage="compress[0]", finetune=lambda m, epochs, lr, **kw: {"epochs": 0})
    compressor = s.spec.create(s.config(), ctx)
    compressed = compressor.apply(model, ctx).eval()
    with torch.no_grad():
        got = compressed(ids)
    assert got.shape == want.shape, f"output shape {tuple(got.shape)} after apply, {tuple(want.shape)} before"
    assert got.dtype == want.dtype, f"output dtype {got.dtype} after apply, {want.dtype} before"
    assert bool(torch.isfinite(got).all()), "non-finite outputs after apply"
    if hasattr(compressor, "report"):
        assert isinstance(compressor.report(), dict), "report() must return a dict"
    if not hasattr(compressor, "restore"):
        return
    state = compressed.state_dict()
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    fresh = _compressible()
    restored = s.spec.create(s.config(), ctx).restore(fresh, BuildContext(seed=0, stored_shapes=shapes)).eval()
    restored.load_state_dict(state)  # strict: the restored structure must fit every stored tensor
    with torch.no_grad():
        again = restored(ids)
    assert torch.allclose(again, got), "the restored model answers differently from the compressed one"


# -------------------------------------------------------------- schedulers


@check(frozenset({"scheduler"}))
def check_scheduler_order(s: Subject) -> None:
    """Runs every stage once, after all of its inputs, and returns every output."""
    from autoglm_sdk.dag import Dag

    dag = Dag({"data": (), "a": ("data",), "b": ("data",), "c": ("a", "b"), "decoder": ("c",)})
    calls: list[str] = []

    def call(stage: str, args: list[Any]) -> Any:
        for upstream in dag.inputs[stage]:
            assert upstream == "data" or upstream in calls, f"{stage} ran before its input {upstream}"
        calls.append(stage)
        return f"{stage}({','.join(map(str, args))})"

    outputs = s.make().run(dag, {"data": "x"}, call)
    assert sorted(calls) == ["a", "b", "c", "decoder"], f"stages run: {calls}"
    assert outputs["decoder"] == "decoder(c(a(x),b(x)))", f"wrong result {outputs['decoder']!r}"


# ------------------------------------------------------------------ objectives


@check(frozenset({"objective"}))
def check_objective_loss(s: Subject) -> None:
    """On a batch of the kit's encoder outputs and logits, ``loss(pred, batch)`` is None or a finite scalar, and
    a tensor loss sends gradients to what it reads (embeddings, logits) or to the objective's own parameters."""
    import torch

    objective = s.make()
    assert isinstance(getattr(objective, "weight", None), (int, float)), "an objective needs a numeric `weight`"
    pred = fixtures.prediction()
    batch = [{"label": i % fixtures.NUM_CLASSES} for i in range(pred.logits.size(0))]
    loss = objective.loss(pred, batch)
    if loss is None:
        return
    assert isinstance(loss, torch.Tensor) and loss.dim() == 0, f"loss must be a scalar tensor, got {loss!r}"
    assert torch.isfinite(loss), f"loss is not finite: {float(loss)}"
    leaves = [pred.logits, *(o.embedding for o in pred.outputs.values())]
    if isinstance(objective, torch.nn.Module):
        leaves += [p for p in objective.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    assert any(g is not None and bool(g.abs().sum() > 0) for g in grads), "the loss sends no gradient anywhere"
