"""TOML manifests, validated in two phases, with errors that name the key.

Phase 1 checks the manifest's own shape (known sections, each plugin section a
table with a ``plugin`` name). Phase 2 resolves every plugin through the
registry and validates its section against the plugin's ``Config``. Neither
phase imports torch.
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal

from pydantic import BaseModel, Field, ValidationError

from autoglm_sdk.errors import AutoGLMError, ManifestError
from autoglm_sdk.protocols import PathField, PluginConfig, PluginSpec
from autoglm_sdk.registry import Registry, default_registry, suggest


class PipelineSection(PluginConfig):
    name: str = Field("pipeline", description="Name of the pipeline, recorded in the artifact.")
    description: str = Field("", description="Free text shown in the report.")
    seed: int = Field(0, ge=0, description="Seed for data generation, initialisation and shuffling.")
    baselines: list[str] = Field(
        default_factory=list,
        description="Artifact directories (relative to the working directory) whose test metrics the report shows "
        "beside this pipeline's, e.g. a text-only baseline built from its own manifest.",
    )
    task: Literal["classify", "generate", "summarise", "extractive-qa"] = Field(
        "classify",
        description="What the decoder produces: classify (a label), generate or summarise (text, trained on the "
        "sample field `target_field`), extractive-qa (a span of the input). The decoder must declare the task.",
    )
    target_field: str = Field(
        "target",
        description="Text tasks: the sample field holding the text to produce (the kinship source fills "
        "`explanation` and `summary`; jsonl copies its own target_field).",
    )


class TrainSection(PluginConfig):
    epochs: int = Field(100, ge=0, description="Maximum number of training epochs (0 = no training).")
    lr: float = Field(0.01, gt=0, description="AdamW learning rate.")
    weight_decay: float = Field(5e-4, ge=0, description="AdamW weight decay.")
    batch_size: int = Field(32, ge=1, description="Samples per optimisation step.")
    patience: int = Field(
        20, ge=0, description="Stop after this many epochs without a better validation metric (0 = never)."
    )
    max_grad_norm: float | None = Field(None, gt=0, description="Clip gradients to this norm (none = no clipping).")
    task_weight: float = Field(
        1.0, ge=0, description="Weight of the task (cross-entropy) objective; 0 trains the other objectives alone."
    )
    restarts: int = Field(
        1,
        ge=1,
        le=32,
        description="Train from this many initialisations (seeds seed, seed+1, ...) and keep the one with the best "
        "validation accuracy; guards against a model that settles in a poor local optimum.",
    )
    keep: Literal["best", "ensemble"] = Field(
        "best",
        description="With restarts > 1: keep the restart with the best validation score, or all of them as an "
        "ensemble whose answer is their mean class probability. The stages restarts share (a builder fitted once) "
        "are stored once. Restarts that fit validation alike can still differ far from it (longer chains than "
        "training had); an ensemble does not depend on which one validation happened to favour.",
    )
    schedule: Literal["constant", "cosine", "linear"] = Field(
        "cosine", description="Learning-rate decay over the epochs after warm-up, stepped once per epoch."
    )
    warmup_epochs: int = Field(
        0, ge=0, description="Epochs of linear warm-up before the schedule (warm-up epoch k: lr*k/(warmup_epochs+1))."
    )
    select_on: Literal["accuracy", "macro_f1"] = Field(
        "accuracy",
        description="The validation figure the best epoch (and restart) is chosen on; macro_f1 weighs every class "
        "alike (imbalanced labels).",
    )
    # transfer
    init_from: str | None = PathField(
        None,
        description="Start from this built artifact (its weights and stage files: tokenizers, vocabularies) or "
        "build checkpoint folder: every tensor whose name and shape match is loaded, the rest start fresh; the "
        "report lists both.",
    )
    freeze: list[str] = Field(
        default_factory=list, description="Stages whose parameters do not train, e.g. ['encoders.text', 'reasoner']."
    )
    layer_decay: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Layer-wise learning-rate decay: block i counted from the output (the decoder is block 0) "
        "learns at lr * layer_decay**i. Blocks are the stages in pipeline order, split at numbered layers.",
    )
    unfreeze_every: int = Field(
        0,
        ge=0,
        description="Progressive unfreezing: only the output block trains at first; one more block, from the "
        "output back, joins every this many epochs (0: every block trains from the start).",
    )
    # scarce and imbalanced labels
    class_weights: Literal["none", "balanced", "effective"] = Field(
        "none",
        description="Weigh the task loss per class by the training labels: balanced (inverse frequency) or "
        "effective (inverse effective number of samples, (1 - beta^n) / (1 - beta)).",
    )
    class_weight_beta: float = Field(0.999, gt=0, lt=1, description="beta of class_weights = 'effective'.")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="Label smoothing of the task's cross-entropy.")
    logit_adjustment: float = Field(
        0.0,
        ge=0,
        description="Logit-adjusted loss (Menon et al., 2021): while training, add tau * log(class prior) to the "
        "logits, so the model learns margins that favour rare classes; tau = this value (1 is the usual choice).",
    )
    sampling: Literal["shuffle", "balanced"] = Field(
        "shuffle",
        description="Which labelled examples each step trains on: all, shuffled; or balanced, drawn with "
        "replacement so that every class is drawn equally often (graph tasks: samples; node tasks: labelled nodes).",
    )
    # graphs too large for full-batch training
    neighbors: list[int] = Field(
        default_factory=list,
        description="Node tasks on sampled neighbourhoods: per hop, how many neighbours of each node to keep "
        "(e.g. [15, 10]; -1 keeps all). Empty: full-batch training on the whole graph.",
    )
    seed_nodes: int = Field(1024, ge=1, description="With `neighbors`: labelled nodes per sampled subgraph.")


#: section -> plugin kind, for sections that hold one plugin
PLUGIN_SECTIONS = {
    "data": "data",
    "graph_builder": "graph_builder",
    "reasoner": "reasoner",
    "decoder": "decoder",
    "scheduler": "scheduler",
    "backend": "backend",
}
CORE_SECTIONS = {"pipeline": PipelineSection, "train": TrainSection}
TOP_LEVEL = [*CORE_SECTIONS, *PLUGIN_SECTIONS, "encoders", "objectives", "compress"]
#: [train] keys that became objectives: the hint a manifest written for an older SDK gets
MOVED = {"alignment": "alignment", "pretrain_encoders": "encoder-pretraining", "modality_dropout": "modality-dropout"}
REQUIRED = ("data", "decoder")
DEFAULTS = {"scheduler": {"plugin": "sequential"}, "backend": {"plugin": "cpu"}}
#: keys every stage section may carry besides its plugin's config
STAGE_KEYS = ("plugin", "inputs", "backend")
STAGE_ORDER = ("data", "encoders", "graph_builder", "reasoner", "decoder")


@dataclass
class PluginSection:
    """One resolved plugin section of a manifest."""

    key: str  # manifest key: "reasoner", "encoders.text", "compress[0]"
    kind: str
    plugin: str
    spec: PluginSpec
    config: BaseModel
    inputs: list[str] | None = None
    backend: str | None = None  # a pipeline stage's own backend plugin, run with its default config
    backend_spec: PluginSpec | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"plugin": self.plugin}
        if self.inputs is not None:
            out["inputs"] = list(self.inputs)
        if self.backend is not None:
            out["backend"] = self.backend
        out.update(self.config.model_dump(mode="json", exclude_none=True))
        return out


@dataclass
class Manifest:
    """A validated manifest: core sections plus resolved plugin sections."""

    raw: dict[str, Any]
    pipeline: PipelineSection
    train: TrainSection
    stages: dict[str, PluginSection]  # data, encoders.*, graph_builder, reasoner, decoder
    scheduler: PluginSection
    backend: PluginSection
    compress: list[PluginSection] = field(default_factory=list)
    objectives: dict[str, PluginSection] = field(default_factory=dict)  # objectives.NAME
    source: str = "<string>"

    def sections(self) -> list[PluginSection]:
        return [*self.stages.values(), *self.objectives.values(), self.scheduler, self.backend, *self.compress]

    def resolved(self) -> dict[str, Any]:
        """The manifest with every default filled in (what the lock file records)."""
        out: dict[str, Any] = {
            "pipeline": self.pipeline.model_dump(mode="json"),
            "train": self.train.model_dump(mode="json", exclude_none=True),
        }
        for key, section in self.stages.items():
            if key.startswith("encoders."):
                out.setdefault("encoders", {})[key.split(".", 1)[1]] = section.as_dict()
            else:
                out[key] = section.as_dict()
        for key, section in self.objectives.items():
            out.setdefault("objectives", {})[key.split(".", 1)[1]] = section.as_dict()
        out["scheduler"] = self.scheduler.as_dict()
        out["backend"] = self.backend.as_dict()
        if self.compress:
            out["compress"] = [c.as_dict() for c in self.compress]
        return out


# ---------------------------------------------------------------------------
# reading, overrides


def read_manifest_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ManifestError(
            f"manifest {path} does not exist", hint="check the path, or run `autoglm build` alone for the default"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path}: not valid TOML: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{path}: not valid TOML: {_toml_problem(text, exc)}") from exc


def _toml_problem(text: str, exc: tomllib.TOMLDecodeError) -> str:
    """tomllib's message; one that ends "at end of document" names instead the line where the text stops
    being complete TOML (an unclosed string, array or table starts there)."""
    message = str(exc)
    if "end of document" not in message:
        return message
    lines = text.splitlines(keepends=True)
    for count in range(1, min(len(lines), 2000) + 1):
        try:
            tomllib.loads("".join(lines[:count]))
        except tomllib.TOMLDecodeError:
            what = message.replace("(at end of document)", "").strip()
            return f"{what} (the value begun at line {count} is never closed)"
    return message


def parse_override(text: str) -> tuple[list[str], Any]:
    """``reasoner.layers=4`` -> (["reasoner", "layers"], 4); values parse as TOML, else as strings."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ManifestError(f"--set {text!r}: expected KEY=VALUE, for example --set reasoner.layers=4")
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    return key.strip().split("."), parsed


def apply_overrides(raw: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    raw = copy.deepcopy(raw)
    for text in overrides:
        path, value = parse_override(text)
        node = raw
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ManifestError(f"--set {text!r}: `{part}` is not a table in this manifest")
            node = child
        node[path[-1]] = value
    return raw


# ---------------------------------------------------------------------------
# error messages


def _fmt_value(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_fmt_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def describe_errors(prefix: str, error: ValidationError, fields: Iterable[str]) -> list[str]:
    """Turn pydantic errors into ``key: must be ..., got ...`` lines."""
    lines = []
    fields = list(fields)
    for err in error.errors():
        loc = ".".join(str(p) for p in err["loc"])
        key = f"{prefix}.{loc}" if loc else prefix
        kind, ctx, value = err["type"], err.get("ctx", {}), err.get("input")
        if kind == "extra_forbidden":
            close = suggest(str(err["loc"][-1]), fields)
            lines.append(
                f"{key}: unknown key"
                + (f"; did you mean `{close}`?" if close else f" (valid keys: {', '.join(fields)})")
            )
            continue
        if kind == "missing":
            lines.append(f"{key}: required key is missing")
            continue
        bounds = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}
        if kind in bounds:
            limit = next(iter(ctx.values()))
            lines.append(f"{key}: must be {bounds[kind]} {_fmt_value(limit)}, got {_fmt_value(value)}")
            continue
        message = err["msg"].replace("Input should be", "must be").replace("Value error, ", "")
        # a whole-section (cross-field) error: the section is not worth repeating
        lines.append(f"{key}: {message}" + (f", got {_fmt_value(value)}" if loc else ""))
    return lines


def config_rows(config: type[BaseModel]) -> list[tuple[str, str, str, str]]:
    """(key, type, default, description) per field: what `plugins info` prints."""
    rows = []
    for key, info in config.model_fields.items():
        annotation = getattr(info.annotation, "__name__", None) or str(info.annotation).replace("typing.", "")
        if info.is_required():
            default = "(required)"
        elif info.default_factory is not None:
            default = _fmt_value(info.default_factory())
        else:
            default = "(none)" if info.default is None else _fmt_value(info.default)
        rows.append((key, annotation, default, info.description or ""))
    return rows


# ---------------------------------------------------------------------------
# validation


def validate_manifest(
    raw: dict[str, Any],
    *,
    registry: Registry | None = None,
    allow_import_paths: bool = False,
    source: str = "<string>",
    base: Path | None = None,
    check_paths: bool = True,
) -> Manifest:
    """Validate ``raw`` in two phases and resolve its plugins; raise :class:`ManifestError` listing every problem.
    Relative paths in path fields are read from ``base`` (the manifest's folder), then the working directory;
    ``check_paths=False`` leaves them as written (an artifact's lock: its data need not be where it was built)."""
    registry = registry or default_registry()
    if "cascade" in raw:
        raise ManifestError(
            f"{source or 'this file'} is a cascade of built artifacts, not a pipeline manifest",
            hint="build each member from its own manifest; run the cascade with `autoglm run` or `autoglm serve`",
        )
    problems = _shape_problems(raw)  # phase 1: the manifest's own shape
    if problems:
        raise ManifestError(_join(problems, source))
    # phase 2: each section against its Config
    tables = _plugin_tables(raw, problems)
    train = {k: v for k, v in raw.get("train", {}).items() if k not in MOVED}
    core: dict[str, BaseModel] = {}
    for key, model in CORE_SECTIONS.items():
        try:
            core[key] = model.model_validate(train if key == "train" else raw.get(key, {}))
        except ValidationError as exc:
            problems.extend(describe_errors(key, exc, list(model.model_fields)))
    resolved = {}
    for key, kind, table in tables:
        section = _plugin_section(key, kind, table, registry, allow_import_paths, problems, base, check_paths)
        if section is not None:
            resolved[key] = section
    if "train" in core:
        if check_paths:
            core["train"] = _resolve_paths("train", core["train"], base, problems)
        stage_keys = [k for k in resolved if k.split(".")[0] in STAGE_ORDER and k != "data"]
        for name in core["train"].freeze:  # type: ignore[attr-defined]
            if name not in stage_keys:
                close = suggest(name, stage_keys)
                problems.append(
                    f"train.freeze: no stage `{name}`"
                    + (f" (did you mean `{close}`?)" if close else "")
                    + f"; the stages are {', '.join(stage_keys)}"
                )
    if "decoder" in resolved and "pipeline" in core:
        problems += _task_problems(core["pipeline"], resolved["decoder"], registry)
    if problems:
        raise ManifestError(_join(problems, source))
    stages = {k: v for k, v in resolved.items() if k.split(".")[0] in STAGE_ORDER}
    stages = dict(sorted(stages.items(), key=lambda kv: STAGE_ORDER.index(kv[0].split(".")[0])))
    return Manifest(
        raw=raw,
        pipeline=core["pipeline"],
        train=core["train"],
        stages=stages,  # type: ignore[arg-type]
        scheduler=resolved["scheduler"],
        backend=resolved["backend"],
        compress=[resolved[k] for k in resolved if k.startswith("compress[")],
        objectives={k: resolved[k] for k in resolved if k.startswith("objectives.")},
        source=source,
    )


def _task_problems(pipeline: Any, decoder: PluginSection, registry: Registry) -> list[str]:
    """The decoder must declare the task the manifest chose (capability ``task:KIND``; none means classify)."""
    from autoglm_sdk.protocols import supported_tasks

    can = supported_tasks(decoder.spec.capabilities)
    if pipeline.task in can:
        return []
    able = []
    for entry in registry.entries("decoder"):
        try:
            spec = entry.load()
        except AutoGLMError:
            continue
        if pipeline.task in supported_tasks(spec.capabilities):
            able.append(f"`{spec.name}`")
    hint = f"use a decoder that can, e.g. {', '.join(able)}" if able else "no installed decoder can"
    return [
        f"pipeline.task: decoder `{decoder.plugin}` cannot do task `{pipeline.task}` (it does {', '.join(can)}); "
        + hint
    ]


def _shape_problems(raw: dict[str, Any]) -> list[str]:
    """Unknown or malformed top-level sections, missing required ones, [train] keys that moved."""
    problems = []
    for key, value in raw.items():
        if key not in TOP_LEVEL:
            close = suggest(key, TOP_LEVEL)
            problems.append(
                f"{key}: unknown section"
                + (f"; did you mean `{close}`?" if close else f" (sections: {', '.join(TOP_LEVEL)})")
            )
        elif key == "compress":
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                problems.append("compress: must be an array of tables ([[compress]])")
        elif not isinstance(value, dict):
            problems.append(f"{key}: must be a table ([{key}]), got {_fmt_value(value)}")
    problems += [
        f"{key}: required section is missing (add a [{key}] table with a `plugin` key)"
        for key in REQUIRED
        if key not in raw
    ]
    train = raw.get("train") if isinstance(raw.get("train"), dict) else {}
    for key, plugin in MOVED.items():
        if key in train:
            problems.append(
                f"train.{key}: is an objective now: move it to [objectives.{key}] with plugin = "
                f'"{plugin}"' + (" and rate = VALUE" if plugin == "modality-dropout" else " and the same keys")
            )
    return problems


def _plugin_tables(raw: dict[str, Any], problems: list[str]) -> list[tuple[str, str, dict[str, Any]]]:
    """(manifest key, kind, table) for every section that names a plugin, defaults included."""
    tables = [
        (k, kind, raw.get(k, DEFAULTS.get(k))) for k, kind in PLUGIN_SECTIONS.items() if k in raw or k in DEFAULTS
    ]
    for group, kind in (("encoders", "encoder"), ("objectives", "objective")):
        for name, table in (raw.get(group) or {}).items():
            if isinstance(table, dict):
                tables.append((f"{group}.{name}", kind, table))
            else:
                problems.append(f"{group}.{name}: must be a table ([{group}.{name}])")
    tables += [(f"compress[{i}]", "compressor", table) for i, table in enumerate(raw.get("compress", []))]
    return tables


def _plugin_section(
    key: str,
    kind: str,
    table: dict[str, Any],
    registry: Registry,
    allow_import_paths: bool,
    problems: list[str],
    base: Path | None = None,
    check_paths: bool = True,
) -> PluginSection | None:
    """One section resolved against its plugin's Config, or None with its problems appended."""
    name = table.get("plugin")
    if not isinstance(name, str) or not name:
        problems.append(f"{key}.plugin: required key is missing (the name of a {kind.replace('_', ' ')} plugin)")
        return None
    try:
        spec = registry.spec(kind, name, allow_import_path=allow_import_paths)
    except AutoGLMError as exc:
        problems.append(f"{key}.plugin: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""))
        return None
    is_stage = key.split(".")[0] in STAGE_ORDER[1:]
    inputs = table.get("inputs")
    if inputs is not None and not is_stage:
        problems.append(f"{key}.inputs: only pipeline stages (encoders, graph_builder, reasoner, decoder) take inputs")
        inputs = None
    elif inputs is not None and (not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs)):
        problems.append(f"{key}.inputs: must be a list of stage names, got {_fmt_value(inputs)}")
        inputs = None
    backend, backend_spec = table.get("backend"), None
    if backend is not None and not is_stage:
        problems.append(
            f"{key}.backend: only pipeline stages (encoders, graph_builder, reasoner, decoder) take their own backend"
        )
        backend = None
    elif backend is not None and not isinstance(backend, str):
        problems.append(f"{key}.backend: must be a backend plugin name, got {_fmt_value(backend)}")
        backend = None
    elif backend is not None:
        try:
            backend_spec = registry.spec("backend", backend)
        except AutoGLMError as exc:
            problems.append(f"{key}.backend: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""))
            backend = None
    try:
        config = spec.config.model_validate({k: v for k, v in table.items() if k not in STAGE_KEYS})
    except ValidationError as exc:
        problems.extend(describe_errors(key, exc, [*STAGE_KEYS, *spec.config.model_fields]))
        return None
    if check_paths:
        config = _resolve_paths(key, config, base, problems)
    return PluginSection(key, kind, name, spec, config, inputs, backend, backend_spec)


def _resolve_paths(key: str, config: BaseModel, base: Path | None, problems: list[str]) -> BaseModel:
    """Fields declared with :func:`~autoglm_sdk.protocols.PathField`: relative paths found in the manifest's
    folder (``base``), else in the working directory, made absolute; a required one that is in neither is a
    problem that says where it was looked for."""
    changes = {}
    for name, info in type(config).model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        value = getattr(config, name)
        if "local_path" not in extra or not isinstance(value, str) or not value:
            continue
        path = Path(value).expanduser()
        places = [path] if path.is_absolute() else [*([base / path] if base is not None else []), path]
        found = next((p for p in places if p.exists()), None)
        if found is not None:
            changes[name] = str(found.resolve())
        elif extra["local_path"]:
            where = " or ".join(str(p.resolve().parent) for p in places)
            problems.append(f"{key}.{name}: {value} does not exist (looked in {where})")
    return config.model_copy(update=changes) if changes else config


def _join(problems: list[str], source: str) -> str:
    if len(problems) == 1:
        return problems[0]
    return f"{len(problems)} problems in {source}:\n  " + "\n  ".join(problems)


def load_manifest(
    path: str | Path | None = None,
    overrides: Iterable[str] = (),
    *,
    registry: Registry | None = None,
    allow_import_paths: bool = False,
) -> Manifest:
    """Read (``None`` = the embedded default), apply ``--set`` overrides, validate."""
    if path is None:
        raw, source, base = default_manifest(), "default manifest", None
    else:
        raw, source, base = read_manifest_file(path), str(path), Path(path).parent
    raw = apply_overrides(raw, overrides)
    return validate_manifest(raw, registry=registry, allow_import_paths=allow_import_paths, source=source, base=base)


DEFAULT_MANIFEST = Path(__file__).with_name("default_manifest.toml")


def default_manifest() -> dict[str, Any]:
    return tomllib.loads(DEFAULT_MANIFEST.read_text())


# ---------------------------------------------------------------------------
# JSON schema for editors


def manifest_schema(registry: Registry | None = None) -> dict[str, Any]:
    """JSON schema of a manifest for editors, made by pydantic from the models validation uses.

    Each plugin section is one discriminated branch per installed plugin (``if plugin == NAME then its Config``),
    so a typo is reported against its key, not as "valid under none of the schemas". Every model's ``$defs``
    live at the root, where their references point.
    """
    registry = registry or default_registry()
    defs: dict[str, Any] = {}

    def model_schema(model: type[BaseModel]) -> dict[str, Any]:
        schema = model.model_json_schema()
        defs.update(schema.pop("$defs", {}))
        return schema

    def plugin_section(kind: str, extra_keys: dict[str, Any]) -> dict[str, Any]:
        names, branches = [], []
        for entry in registry.entries(kind):
            try:
                spec = entry.load()
            except AutoGLMError:
                continue  # broken plugins are listed by `plugins list`, not offered to editors
            schema = model_schema(spec.config)
            names.append(spec.name)
            properties = {"plugin": {"const": spec.name}, **extra_keys, **schema.get("properties", {})}
            branches.append(
                {
                    "if": {"properties": {"plugin": {"const": spec.name}}, "required": ["plugin"]},
                    "then": {
                        "description": spec.summary,
                        "properties": properties,
                        "required": schema.get("required", []),
                        "additionalProperties": False,
                    },
                }
            )
        plugin = {"description": f"The {kind.replace('_', ' ')} plugin.", "enum": names} if names else {}
        return {"type": "object", "properties": {"plugin": plugin}, "required": ["plugin"], "allOf": branches}

    stage_keys = {
        "inputs": {"type": "array", "items": {"type": "string"}, "description": "Upstream stage names."},
        "backend": {"type": "string", "description": "A backend plugin for this stage alone."},
    }
    props: dict[str, Any] = {key: model_schema(model) for key, model in CORE_SECTIONS.items()}
    for key, kind in PLUGIN_SECTIONS.items():
        props[key] = plugin_section(kind, stage_keys if key in STAGE_ORDER[1:] else {})
    props["encoders"] = {"type": "object", "additionalProperties": plugin_section("encoder", stage_keys)}
    props["objectives"] = {"type": "object", "additionalProperties": plugin_section("objective", {})}
    props["compress"] = {"type": "array", "items": plugin_section("compressor", {})}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "AutoGLM manifest",
        "type": "object",
        "properties": props,
        "required": list(REQUIRED),
        "additionalProperties": False,
        "$defs": defs,
    }
