"""Artifact directories: written atomically, loaded without running code from them.

Layout::

    manifest.lock.toml   resolved manifest, plugin distributions and versions, ports, task
    weights.safetensors  every learnable stage's parameters and buffers
    report.json          metrics, history, timings, sizes, backends
    report.md            the same for people, with figures
    *.png                figures referenced by report.md

Only TOML, JSON and safetensors are read back: no pickle, no imports named by
the artifact beyond the registered plugins its lock file names.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import tomllib
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from autoglm_sdk.errors import ArtifactError, AutoGLMWarning, InputError
from autoglm_sdk.protocols import BuildContext, Port, TaskSpec

LOCK = "manifest.lock.toml"
WEIGHTS = "weights.safetensors"
REPORT_JSON = "report.json"
REPORT_MD = "report.md"
FORMAT_VERSION = 3  # 3: [files] holds a sha256 of every file; 2: objectives are sections of their own


def strip_none(value: Any) -> Any:
    """TOML has no null: drop None values recursively."""
    if isinstance(value, dict):
        return {k: strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [strip_none(v) for v in value if v is not None]
    return value


def port_to_dict(port: Port) -> dict[str, Any]:
    return strip_none(
        {
            "type": port.type,
            "modalities": sorted(port.modalities),
            "dim": port.dim,
            "num_edge_types": port.num_edge_types,
            "edge_type_names": list(port.edge_type_names),
            "attributes": sorted(port.attributes),
        }
    )


def port_from_dict(data: dict[str, Any]) -> Port:
    return Port(
        data["type"],
        frozenset(data.get("modalities", ())),
        data.get("dim"),
        data.get("num_edge_types"),
        tuple(data.get("edge_type_names", ())),
        frozenset(data.get("attributes", ())),
    )


STAGE_FILES = "stages"


def stage_file_writer(stages: dict[str, Any]) -> Callable[[Path], None]:
    """Writer for ``stages/<stage>/<name>``: every stage's ``artifact_files()``."""

    def write(root: Path) -> None:
        root.mkdir()
        for key, stage in stages.items():
            files = stage.artifact_files() if hasattr(stage, "artifact_files") else {}
            for name, content in files.items():
                if "/" in name or name.startswith("."):
                    raise ValueError(f"stage {key}: artifact file name {name!r} must be a plain file name")
                (root / key).mkdir(exist_ok=True)
                (root / key / name).write_bytes(content)

    return write


def read_stage_files(path: Path, stage: str) -> dict[str, bytes]:
    folder = path / STAGE_FILES / stage
    return {f.name: f.read_bytes() for f in sorted(folder.iterdir())} if folder.is_dir() else {}


def task_to_dict(task: TaskSpec) -> dict[str, Any]:
    return {
        "level": task.level,
        "num_classes": task.num_classes,
        "label_names": list(task.label_names),
        "metric": task.metric,
        "kind": task.kind,
        "target": task.target,
    }


def task_from_dict(data: dict[str, Any]) -> TaskSpec:
    return TaskSpec(
        data["level"],
        int(data["num_classes"]),
        tuple(data.get("label_names", ())),
        data.get("metric", "accuracy"),
        data.get("kind", "classify"),
        data.get("target", ""),
    )


class _LockTask(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    level: Literal["graph", "node"]
    num_classes: int = Field(ge=1)
    label_names: list[str] = []
    metric: str = "accuracy"
    kind: Literal["classify", "generate", "summarise", "extractive-qa"] = "classify"
    target: str = ""

    @model_validator(mode="after")
    def _names_fit(self) -> "_LockTask":
        if self.label_names and len(self.label_names) != self.num_classes:
            raise ValueError(f"has {len(self.label_names)} label_names for {self.num_classes} classes")
        return self


class _LockPort(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    type: Literal["samples", "embeddings", "semantic_graph", "logits", "text", "spans"]
    modalities: list[str] = []
    dim: int | None = Field(None, ge=1)
    num_edge_types: int | None = Field(None, ge=0)
    edge_type_names: list[str] = []
    attributes: list[str] = []


class _LockData(BaseModel):
    model_config = ConfigDict(strict=True)
    fingerprint: str


class _LockFile(BaseModel):
    """The shape of ``manifest.lock.toml``: a damaged or edited lock is named key by key, not a KeyError."""

    model_config = ConfigDict(strict=True)
    autoglm: dict[str, Any]
    data: _LockData
    task: _LockTask
    ports: dict[str, _LockPort]
    plugins: dict[str, dict[str, str]] = {}
    manifest: dict[str, Any]
    files: dict[str, str]  # path inside the artifact -> sha256 of its bytes


def file_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` but the lock, by path relative to ``root``."""
    import hashlib

    out = {}
    for file in sorted(root.rglob("*")):
        if file.is_file() and file.name != LOCK:
            digest = hashlib.sha256()
            with open(file, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            out[file.relative_to(root).as_posix()] = digest.hexdigest()
    return out


def check_files(path: Path, expected: dict[str, str]) -> None:
    """Refuse an artifact whose files changed since it was written, or that links outside its directory."""
    root = path.resolve()
    for file in sorted(path.rglob("*")):
        if file.is_symlink() and not file.resolve().is_relative_to(root):
            raise ArtifactError(
                f"{file} is a link to {file.resolve()}, outside the artifact",
                hint="copy the real file into the artifact instead of linking to it",
            )
    found = file_hashes(path)
    for name, digest in expected.items():
        if name not in found and not name.startswith(f"{STAGE_FILES}/"):
            continue  # a report or figure the user removed; the weights are looked for on their own below
        if name not in found:
            raise ArtifactError(
                f"{path / name} is missing", hint="copy the whole artifact directory again, or rebuild it"
            )
        if found[name] != digest:
            raise ArtifactError(
                f"{path / name} has changed since the artifact was written (sha256 differs from {LOCK})",
                hint="the file was edited or damaged: copy the artifact again, or rebuild it",
            )


def write_artifact(output: Path, files: dict[str, Callable[[Path], None]], *, overwrite: bool = False) -> Path:
    """Write ``files`` (name -> writer(path)) into a temporary sibling directory, then rename it into place.

    An interrupted build removes its hidden ``.NAME.tmp-*`` directory on the way
    out, so a new ``output`` appears whole or not at all. Replacing an existing
    artifact (``--force``) takes two renames; a crash between them leaves the old
    artifact at ``.NAME.old-PID`` beside it.
    """
    output = Path(output)
    if output.exists() and not overwrite:
        raise ArtifactError(f"{output} already exists", hint="pass --force to replace it, or choose another -o")
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.tmp-", dir=output.parent))
    try:
        for name, writer in files.items():
            writer(tmp / name)
        # mkdtemp makes a private directory; an artifact is meant to be shared like any other output
        mask = os.umask(0)
        os.umask(mask)
        for child in [tmp, *tmp.rglob("*")]:
            os.chmod(child, (0o777 if child.is_dir() else 0o666) & ~mask)
        if output.exists():
            old = output.with_name(f".{output.name}.old-{os.getpid()}")
            os.replace(output, old)
            os.replace(tmp, output)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, output)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return output


@contextmanager
def output_lock(output: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``output`` (and so on its checkpoint) while one process builds it.

    A second build of the same output is refused at once, naming the holder; the lock lives in the hidden file
    ``.NAME.lock`` beside the output, dies with its process (``kill -9`` included) and is removed on release.
    """
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    path = output.with_name(f".{output.name}.lock")
    try:
        import fcntl
    except ImportError:  # no flock (Windows): builds are not guarded against each other there
        yield
        return
    while True:
        handle = open(path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise ArtifactError(
                f"{output} is being built by {holder}", hint="wait for that build to finish, or build to another -o"
            ) from None
        try:  # the previous holder may have removed the file between our open and our flock: lock the new one
            same = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        handle.close()
    handle.seek(0)
    handle.truncate()
    handle.write(f"process {os.getpid()} ({' '.join(sys.argv)[:200]})\n")
    handle.flush()
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        handle.close()


@dataclass
class Lock:
    """``manifest.lock.toml``: what an artifact was built from, enough to rebuild its pipeline without the data."""

    manifest: dict[str, Any]  # the resolved manifest, every default filled in
    task: TaskSpec
    ports: dict[str, Port]
    plugins: dict[str, dict[str, str]]  # section -> plugin, kind, distribution, version
    data_fingerprint: str
    versions: dict[str, Any] = field(default_factory=dict)  # format, SDK, contract and hookspec versions; created
    files: dict[str, str] = field(default_factory=dict)  # every other file's sha256, filled as the artifact is written

    @classmethod
    def of(cls, session: Any) -> "Lock":
        from datetime import datetime, timezone

        from autoglm_sdk import __version__
        from autoglm_sdk.hooks import HOOKSPEC_VERSION
        from autoglm_sdk.kinds import CONTRACT_VERSION
        from autoglm_sdk.registry import distribution_of

        plugins = {}
        for section in session.manifest.sections():
            dist, version = distribution_of(section.spec)
            plugins[section.key] = {
                "plugin": section.plugin,
                "kind": section.kind,
                "distribution": dist,
                "version": version,
            }
        versions = {
            "format_version": FORMAT_VERSION,
            "sdk_version": __version__,
            "contract_version": CONTRACT_VERSION,
            "hookspec_version": HOOKSPEC_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        return cls(
            session.manifest.resolved(),
            session.task,
            dict(session.ports),
            plugins,
            session.dataset.fingerprint,
            versions,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "autoglm": self.versions,
            "data": {"fingerprint": self.data_fingerprint},
            "task": task_to_dict(self.task),
            "ports": {k: port_to_dict(p) for k, p in self.ports.items()},
            "plugins": self.plugins,
            "manifest": self.manifest,
            "files": self.files,
        }

    @classmethod
    def read(cls, path: Path) -> "Lock":
        """The lock of the artifact directory ``path``; an error naming what is missing or unsupported."""
        path = Path(path)
        if not path.is_dir():
            raise ArtifactError(
                f"{path} is not an artifact directory", hint="pass the directory `autoglm build -o` wrote"
            )
        lock_path = path / LOCK
        if not lock_path.exists():
            raise ArtifactError(
                f"{path} has no {LOCK}; it is not a complete artifact", hint="rebuild it with `autoglm build`"
            )
        try:
            data = tomllib.loads(lock_path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ArtifactError(f"{lock_path}: corrupt lock file: {exc}") from exc
        header = data.get("autoglm")
        version = header.get("format_version") if isinstance(header, dict) else None
        if version != FORMAT_VERSION:
            raise ArtifactError(
                f"{path}: artifact format {version} is not supported (this SDK reads {FORMAT_VERSION})",
                hint="rebuild it with this SDK's `autoglm build`",
            )
        try:
            checked = _LockFile.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(part) for part in first["loc"])
            raise ArtifactError(
                f"{lock_path}: `{key}` {first['msg'].replace('Value error, ', '').lower()}",
                hint="the lock file was edited or damaged; rebuild the artifact",
            ) from None
        return cls(
            checked.manifest,
            task_from_dict(checked.task.model_dump()),
            {k: port_from_dict(v.model_dump(exclude_none=True)) for k, v in checked.ports.items()},
            checked.plugins,
            checked.data.fingerprint,
            checked.autoglm,
            checked.files,
        )


@dataclass
class Report:
    """``report.json``: everything one build measured; ``report.md`` is rendered from it. The build fills it
    (:func:`autoglm_sdk.builder.build_report`); a compressed copy adds its steps (:meth:`with_compression`)."""

    pipeline: str
    description: str
    seed: int
    task: dict[str, Any]
    data: dict[str, Any]  # plugin, fingerprint, group_key, split sizes
    metrics: dict[str, Any]  # per split: accuracy, loss, count, confusion, groups
    training: dict[str, Any]  # history (train_loss, loss/NAME per epoch), objectives, restarts, pretraining
    model: dict[str, Any]  # parameters, weights_bytes, stage plugins
    backend: dict[str, Any]  # chosen, device, per stage, fallbacks, runners and their summaries, capabilities
    plugins: dict[str, Any]
    timings: dict[str, float]
    environment: dict[str, str]
    baselines: dict[str, Any] = field(default_factory=dict)
    ports: dict[str, Any] = field(default_factory=dict)
    stages: dict[str, Any] = field(default_factory=dict)  # each stage's report()
    evaluations: dict[str, Any] = field(default_factory=dict)  # plugins' (autoglm_evaluate): figures and markdown
    compression: list[dict[str, Any]] = field(default_factory=list)  # one entry per [[compress]] step

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Report":
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    def with_compression(self, steps: list[dict[str, Any]], metrics: dict[str, Any], model: Any) -> "Report":
        """This report after more compression steps: their entries, the new metrics, the re-made runners."""
        backend = dict(self.backend)
        if model.runners:  # re-exported or recompiled for the compressed weights
            backend["runners"] = {k: r.describe() for k, r in model.runners.items()}
            backend["runner_summaries"] = {k: r.summary() for k, r in model.runners.items()}
        return replace(self, compression=[*self.compression, *steps], metrics=metrics, backend=backend)


def write_pipeline_artifact(
    output: Path,
    model: Any,
    lock: Lock,
    report: Report,
    *,
    overwrite: bool = False,
    pictures: Callable[[Path], None] | None = None,
) -> Path:
    """Write a pipeline's artifact: weights (safetensors; tensors shared between modules once), the lock,
    every stage's files, report.json and report.md. ``pictures(directory)`` may add plots report.md
    links to before it is written; report.md comes last because it needs the weights' size."""
    import json

    import tomli_w
    from safetensors.torch import save_model

    from autoglm_sdk import __version__
    from autoglm_sdk.report import write_report_md

    def write_weights(path: Path) -> None:
        save_model(model, str(path), metadata={"format": "autoglm", "sdk_version": __version__})
        report.model["weights_bytes"] = path.stat().st_size

    def write_lock(path: Path) -> None:  # last: it records every other file's hash
        hashed = replace(lock, files=file_hashes(path.parent))
        path.write_text(tomli_w.dumps(strip_none(hashed.as_dict())))

    def write_reports(path: Path) -> None:
        if pictures is not None:
            pictures(path.parent)
        (path.parent / REPORT_JSON).write_text(json.dumps(report.as_dict(), indent=2, default=float) + "\n")
        write_report_md(path.parent, report.as_dict())

    files = {
        WEIGHTS: write_weights,
        STAGE_FILES: stage_file_writer(model.stage_objects),
        REPORT_MD: write_reports,
        LOCK: write_lock,
    }
    return write_artifact(output, files, overwrite=overwrite)


@dataclass(repr=False)
class Pipeline:
    """A loaded artifact: ``predict(records)`` (or calling it) answers JSON-like records or texts.

    It is also the model-level API (``AutoGLMModel`` is this class): ``from_pretrained(dir)`` loads an artifact
    (as :func:`load` does), ``from_config(AutoGLMConfig(...), output)`` builds one, ``save_pretrained(dir)``
    writes it, ``generate(texts)`` returns a text pipeline's generated texts and ``summary()`` its stages.
    """

    path: Path
    lock: Lock
    session: Any
    model: Any

    def __call__(self, records: Any, **options: Any) -> list[dict[str, Any]]:
        return self.predict(records, **options)

    def __repr__(self) -> str:
        stages = " -> ".join(f"{key} {section.plugin}" for key, section in self.manifest.stages.items())
        count = sum(p.numel() for p in self.model.parameters())
        task = f"{self.task.level}-level, {self.task.num_classes} classes"
        if self.task.textual:
            task = f"task {self.task.kind} (target `{self.task.target}`)"
        return f"Pipeline({str(self.path)!r}: {stages}; {task}; {count:,} parameters)"

    @property
    def manifest(self) -> Any:
        return self.session.manifest

    @property
    def task(self) -> TaskSpec:
        return self.session.task

    @property
    def backend(self) -> Any:
        return self.session.backend

    @property
    def data_port(self) -> Port:
        return self.session.ports["data"]

    @property
    def modalities(self) -> list[str]:
        return sorted(self.data_port.modalities)

    def report(self) -> Report:
        """The artifact's ``report.json``."""
        import json

        return Report.from_dict(json.loads((self.path / REPORT_JSON).read_text()))

    def save(
        self, output: Path, report: Report, *, overwrite: bool = False, pictures: Callable[[Path], None] | None = None
    ) -> Path:
        """Write this pipeline (its model and lock, e.g. after compression) as a new artifact with ``report``."""
        return write_pipeline_artifact(
            Path(output), self.model, self.lock, report, overwrite=overwrite, pictures=pictures
        )

    # ------------------------------------------------------ the model API

    @classmethod
    def from_pretrained(cls, path: str | Path, **options: Any) -> "Pipeline":
        """Load an artifact directory (the same as :func:`load`; ``options`` go to it)."""
        return load(path, **options)

    @classmethod
    def from_config(
        cls, config: Any, output: str | Path, *, overwrite: bool = False, progress: Any = None
    ) -> "Pipeline":
        """Build (fit, train, evaluate) the pipeline an :class:`~autoglm_sdk.automodel.AutoGLMConfig` describes into
        the artifact directory ``output``, and load it."""
        from autoglm_sdk.builder import build
        from autoglm_sdk.manifest import validate_manifest

        manifest = validate_manifest(config.to_manifest(), source="AutoGLMConfig")
        build(manifest, output, overwrite=overwrite, progress=progress)
        return load(output)

    def save_pretrained(self, output: str | Path, *, overwrite: bool = False) -> Path:
        """Write this pipeline, with its report, as an artifact in ``output`` (safetensors weights, lock,
        stage files); ``from_pretrained(output)`` loads it back."""
        return self.save(Path(output), self.report(), overwrite=overwrite)

    def generate(self, inputs: Any, **options: Any) -> list[str]:
        """The generated text for each input (a text, a record, or a list of them) of a text pipeline; options as
        for :meth:`predict` (``max_new_tokens``, ``num_beams``, ``do_sample``, ``stop``, ``on_text``, ...)."""
        if not self.task.textual:
            raise InputError(
                f"this pipeline's task is {self.task.kind}: it answers with labels, not text",
                hint='use predict(), or build a text pipeline ([pipeline] task = "generate")',
            )
        return [answer["generated"] for answer in self.predict(inputs, **options)]

    def summary(self) -> dict[str, Any]:
        """Stages (plugin, input stages, output port, parameters, trainable parameters) and the task."""
        stages = {}
        for key in self.session.dag.order():
            module = self.model.stage_objects.get(key)
            params = list(module.parameters()) if hasattr(module, "parameters") else []
            stages[key] = {
                "plugin": self.manifest.stages[key].plugin,
                "inputs": list(self.session.dag.inputs[key]),
                "output": self.session.ports[key].describe(),
                "parameters": sum(p.numel() for p in params),
                "trainable": sum(p.numel() for p in params if p.requires_grad),
            }
        return {"task": task_to_dict(self.task), "stages": stages}

    def data_split(self, split: str) -> list[dict[str, Any]]:
        """The samples of ``split`` from the artifact's own data source (``dev`` and ``validation`` mean ``val``),
        refused if the data changed since the build."""
        return self.session.split({"dev": "val", "validation": "val"}.get(split, split))

    def predict(
        self, records: Any, batch_size: int = 32, *, errors: str = "raise", **generation: Any
    ) -> list[dict[str, Any]]:
        """One answer per record: a label (graph level), a label per node (node level), or for a text task the
        generated text (``generated``) and the label it states (``prediction``) where the task has labels;
        ``generation`` options go to the decoder's ``generate`` (``max_new_tokens``, ``num_beams``, ``stop``,
        ``on_text``, ...).

        ``records`` is one record or a list of them: JSON-like dicts, plain strings (the text of a text
        pipeline), or ``(where, record)`` pairs that name each record's place in error messages. With
        ``errors="report"`` a record that cannot be answered gets ``{"input": where, "error": message}`` in
        its place and every other record is still answered; with ``"raise"`` the first such record raises.
        """
        from autoglm_sdk.io import sample_from_record

        if isinstance(records, (str, dict)):
            records = [records]
        answers: list[Any] = []
        ready: list[tuple[int, str, dict[str, Any]]] = []
        for i, record in enumerate(records):
            where, value = record if isinstance(record, tuple) else (f"record {i + 1}", record)
            if isinstance(value, str) and "text" in self.data_port.modalities:
                value = {"text": value}
            answers.append(None)
            try:
                if isinstance(value, InputError):  # a line that was not even JSON (io.read_records)
                    raise value
                ready.append((i, where, sample_from_record(value, self.data_port, where)))
            except InputError as exc:
                if errors == "raise":
                    raise
                answers[i] = {"input": where, "error": exc.message}
        done = self.predict_samples(
            [sample for _, _, sample in ready], batch_size, errors=errors, where=[w for _, w, _ in ready], **generation
        )
        for (i, _, _), answer in zip(ready, done):
            answers[i] = answer
        return answers

    def predict_samples(
        self,
        samples: list[dict[str, Any]],
        batch_size: int = 32,
        *,
        errors: str = "raise",
        where: list[str] | None = None,
        **generation: Any,
    ) -> list[dict[str, Any]]:
        """One answer per sample, as :meth:`predict`. With ``errors="report"`` a batch that a stage refuses is
        answered one sample at a time, and each refused sample gets ``{"input": where, "error": message}``
        (``where``: the samples' names, default ``sample N``)."""
        from autoglm_sdk.trainer import batches

        if errors == "raise":
            return self._predict_batches(samples, batch_size, **generation)
        names = where or [f"sample {i + 1}" for i in range(len(samples))]
        answers: list[dict[str, Any]] = []
        for chunk in batches(list(zip(names, samples)), batch_size):
            try:
                answers += self._predict_batches([s for _, s in chunk], batch_size, **generation)
            except InputError:  # find the failing ones
                answers += [self._one(sample, name, generation) for name, sample in chunk]
        return answers

    def _one(self, sample: dict[str, Any], where: str, generation: dict[str, Any]) -> dict[str, Any]:
        try:
            return self._predict_batches([sample], **generation)[0]
        except InputError as exc:  # a stage's complaint: it does not know where the sample came from
            return {"input": where, "error": f"{where}: {exc.message}"}

    def _predict_batches(
        self, samples: list[dict[str, Any]], batch_size: int = 32, **generation: Any
    ) -> list[dict[str, Any]]:
        import torch

        from autoglm_sdk.trainer import batches

        self.model.eval()
        answers: list[dict[str, Any]] = []
        if generation.get("on_text") is not None:
            batch_size = 1  # a streamer follows one sequence
        with torch.no_grad():
            for chunk in batches(samples, batch_size):
                with self.backend.autocast():
                    pred = self.model(chunk)
                    texts = self.model.generate(chunk, **generation) if self.task.textual else None
                if texts is not None:
                    explained = self._explanations(pred, len(chunk))
                    answers += [self._text_answer(s, t, e) for s, t, e in zip(chunk, texts, explained)]
                    continue
                probs = pred.logits.float().softmax(-1)
                if self.task.level == "graph":
                    explained = self._explanations(pred, len(chunk))
                    reasons = self.model.abstentions(pred)
                    for sample, p, explanation, reason in zip(chunk, probs, explained, reasons):
                        answers.append({**self._answer(sample, p, reason), **explanation})
                else:
                    batch = getattr(pred.graph, "batch", None)
                    for i, sample in enumerate(chunk):
                        rows = probs if batch is None else probs[batch == i]
                        answers.append(self._node_answer(sample, rows))
        return answers

    def _explanations(self, pred: Any, count: int) -> list[dict[str, Any]]:
        """What the graph builder made of each input, when it can say (``explain``)."""
        builder = self.model.stage_objects.get("graph_builder")
        built = pred.outputs.get("graph_builder")
        if builder is None or not hasattr(builder, "explain") or built is None:
            return [{} for _ in range(count)]
        return [{"graph": builder.explain(built.get_example(i))} for i in range(count)]

    def _answer(self, sample: dict[str, Any], p: Any, abstained: str | None = None) -> dict[str, Any]:
        """A label and its confidence; or, where the input cannot answer the question, no label and the reason."""
        index = int(p.argmax())
        out: dict[str, Any] = {"prediction": self.task.label_name(index), "confidence": round(float(p[index]), 6)}
        if abstained is not None:
            out = {"prediction": None, "abstained": f"no relation found: {abstained}"}
        if "id" in sample:
            out["id"] = sample["id"]
        if "label" in sample:  # gold answers pass through: a class index becomes its name
            gold = sample["label"]
            out["label"] = self.task.label_name(gold) if isinstance(gold, int) else gold
        return out

    def _text_answer(self, sample: dict[str, Any], text: str, explanation: dict[str, Any]) -> dict[str, Any]:
        """A generated text, the label it states (where the task has labels), the gold label and target text
        when the sample carries them, and what the graph builder made of the input."""
        from autoglm_sdk.textgen import stated_label

        out: dict[str, Any] = {"generated": text}
        if self.task.label_names:
            stated = stated_label(text, self.task.label_names)
            out["prediction"] = None if stated is None else self.task.label_name(stated)
        if "id" in sample:
            out["id"] = sample["id"]
        if "label" in sample:
            gold = sample["label"]
            out["label"] = self.task.label_name(gold) if isinstance(gold, int) else gold
        if isinstance(sample.get(self.task.target), str):
            out["target"] = sample[self.task.target]
        return {**out, **explanation}

    def _node_answer(self, sample: dict[str, Any], rows: Any) -> dict[str, Any]:
        indices = rows.argmax(-1).tolist()
        out: dict[str, Any] = {"id": sample["id"]} if "id" in sample else {}
        import torch

        graph = sample.get("graph")
        y = getattr(graph, "y", None)
        if y is not None:  # gold labels present: say how many the pipeline got right
            mask = getattr(graph, "label_mask", None)
            mask = torch.ones_like(y, dtype=torch.bool) if mask is None else mask
            hits = torch.tensor(indices)[mask] == y[mask]
            out["accuracy"] = round(float(hits.float().mean()), 6) if hits.numel() else None
        out["predictions"] = [self.task.label_name(i) for i in indices]
        return out


def stored_shapes(weights: Path) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape in a safetensors file, read from its header (no weights are loaded)."""
    from safetensors import safe_open

    with safe_open(str(weights), "pt") as handle:
        return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}


def _warn_versions(lock: Lock) -> None:
    """A warning for each plugin installed in another version than the artifact was built with."""
    from importlib import metadata

    for key, info in lock.plugins.items():
        try:
            installed = metadata.version(info["distribution"])
        except metadata.PackageNotFoundError:
            continue  # validate_manifest already resolved the plugin, possibly from an import path
        if installed != info["version"]:
            warnings.warn(
                f"{key}: artifact was built with {info['distribution']} {info['version']}, {installed} is installed",
                AutoGLMWarning,
                stacklevel=3,
            )


def load(path: str | Path, *, registry: Any = None, allow_import_paths: bool = False) -> Any:
    """Load an artifact directory written by ``autoglm build`` (a :class:`Pipeline`), or a cascade file of
    artifacts (a :class:`~autoglm_sdk.cascade.Cascade`, which answers the same way).

    Every plugin its lock names must be installed; a different installed version
    is a warning, a missing plugin an error with an install hint. A lock that
    names a plugin by import path loads only with ``allow_import_paths``.
    """
    from safetensors.torch import load_model

    from autoglm_sdk.manifest import validate_manifest
    from autoglm_sdk.session import Session

    path = Path(path)
    if path.suffix == ".toml" and path.is_file():
        from autoglm_sdk.cascade import load_cascade

        return load_cascade(path, registry=registry, allow_import_paths=allow_import_paths)
    lock = Lock.read(path)
    check_files(path, lock.files)
    manifest = validate_manifest(
        lock.manifest,
        registry=registry,
        allow_import_paths=allow_import_paths,
        source=str(path / LOCK),
        check_paths=False,
    )
    _warn_versions(lock)
    session = Session.for_artifact(manifest, lock.ports, lock.task, lock.data_fingerprint)
    model = session.new_model(stage_files=lambda key: read_stage_files(path, key))
    if manifest.train.keep == "ensemble":  # room for the other restarts' weights
        model.add_members(manifest.train.restarts - 1)
    weights = path / WEIGHTS
    if not weights.exists():
        raise ArtifactError(f"{path} has no {WEIGHTS}", hint="rebuild it with `autoglm build`")
    try:
        shapes = stored_shapes(weights)
    except Exception as exc:  # safetensors' own errors: empty, truncated, not safetensors at all
        raise ArtifactError(
            f"{weights} is not a readable safetensors file ({type(exc).__name__}: {exc})",
            hint="the file is damaged; copy the artifact again, or rebuild it",
        ) from None
    for section in manifest.compress:  # the compressed structure and dtypes, so the stored weights fit them
        ctx = BuildContext(
            task=lock.task,
            seed=manifest.pipeline.seed,
            device=session.backend.device,
            stage=section.key,
            stored_shapes=shapes,
        )
        compressor = section.spec.create(section.config, ctx)
        if hasattr(compressor, "restore"):  # without one, the compressor changed values only (in-place pruning)
            model = compressor.restore(model, ctx)
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    for key, shape in shapes.items():
        if key in expected and expected[key] != shape:
            raise ArtifactError(
                f"{weights}: tensor `{key}` has shape {list(shape)}, the pipeline expects {list(expected[key])}",
                hint="the lock or the installed plugins no longer match these weights; rebuild the artifact",
            )
    missing, unexpected = load_model(model, str(weights), strict=False)
    if missing or unexpected:
        raise ArtifactError(
            f"{weights}: weights do not match the pipeline (missing {sorted(missing)[:3]}, unexpected "
            f"{sorted(unexpected)[:3]})",
            hint="the installed plugins changed their parameters; rebuild the artifact",
        )
    model.eval()
    model.use_runners(True)
    return Pipeline(path, lock, session, model)


#: the model-level name of a loaded pipeline (transformers users look for it)
AutoGLMModel = Pipeline
