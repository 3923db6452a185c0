"""A cascade of built pipelines: a cheap one answers first, a larger one only where the cheap one is unsure.

A cascade file (TOML) names artifacts in the order they are tried::

    [cascade]
    name = "kinship-cascade"

    [[cascade.members]]
    artifact = "../artifacts/kinship"            # relative to this file
    answer_at = 0.9                              # answers a sample when its confidence is at least this

    [[cascade.members]]
    artifact = "../artifacts/kinship-extractor"  # the last answers whatever reaches it

A sample goes on to the next member when the member abstained (its graph cannot answer the question), could not
read the sample, or answered with confidence below ``answer_at``. Every answer says which members ran
(``route``) and which one answered (``answered_by``). :func:`load_cascade` reads the file; ``autoglm run`` and
``autoglm serve`` take a cascade file wherever they take an artifact.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from autoglm_sdk.errors import ArtifactError, InputError, ManifestError


class _MemberFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    artifact: str = Field(description="An artifact directory, relative to the cascade file.")
    name: str | None = Field(None, description="The member's name in routes (default: the pipeline's name).")
    answer_at: float | None = Field(
        None, gt=0.0, le=1.0, description="Confidence at which this member answers; unset only for the last member."
    )


class _CascadeFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "cascade"
    members: list[_MemberFile] = Field(min_length=2)

    @field_validator("members")
    @classmethod
    def _thresholds(cls, members: list[_MemberFile]) -> list[_MemberFile]:
        for i, member in enumerate(members[:-1]):
            if member.answer_at is None:
                raise ValueError(f"member {i + 1} ({member.artifact}) needs `answer_at`: only the last answers all")
        if members[-1].answer_at is not None:
            raise ValueError("the last member answers whatever reaches it: remove its `answer_at`")
        return members


@dataclass
class Member:
    name: str
    pipeline: Any
    answer_at: float | None


class Cascade:
    """Members tried in order (see the module docstring); answers like a :class:`~autoglm_sdk.artifact.Pipeline`."""

    def __init__(self, path: Path, name: str, members: list[Member]) -> None:
        self.path, self.name, self.members = path, name, members
        first = members[0].pipeline.task
        for member in members:
            task = member.pipeline.task
            if task.textual or task.level != "graph":
                raise ArtifactError(
                    f"{path}: member `{member.name}` has task {task.kind} ({task.level} level); a cascade routes on "
                    "the confidence of one label per sample",
                    hint="cascade classifying pipelines (graph-level tasks) only",
                )
            if list(task.label_names or ()) != list(first.label_names or ()):
                raise ArtifactError(
                    f"{path}: member `{member.name}` answers with other labels than `{members[0].name}`",
                    hint="every member must be built for the same labels, in the same order",
                )

    @property
    def task(self) -> Any:
        return self.members[-1].pipeline.task

    @property
    def data_port(self) -> Any:
        return self.members[0].pipeline.data_port

    @property
    def modalities(self) -> list[str]:
        return self.members[0].pipeline.modalities

    def data_split(self, split: str) -> list[dict[str, Any]]:
        """The split of the last member's data source (the one built for the hardest inputs)."""
        return self.members[-1].pipeline.data_split(split)

    def predict(self, records: Any, batch_size: int = 32, *, errors: str = "raise", **options: Any) -> list[dict]:
        """As :meth:`Pipeline.predict <autoglm_sdk.artifact.Pipeline.predict>`, routed through the members; a
        member that cannot read an input passes it on, and only the last one's errors follow ``errors``."""
        records = [records] if isinstance(records, (str, dict)) else list(records)
        return self._route(records, lambda p, chosen, e: p.predict(chosen, batch_size, errors=e), errors, options)

    def predict_samples(
        self, samples: list[dict[str, Any]], batch_size: int = 32, *, errors: str = "raise", **options: Any
    ) -> list[dict]:
        return self._route(
            samples, lambda p, chosen, e: p.predict_samples(chosen, batch_size, errors=e), errors, options
        )

    def _route(self, inputs: list[Any], answer: Any, errors: str, options: dict[str, Any]) -> list[dict[str, Any]]:
        if options:
            raise InputError(f"a cascade classifies; it takes no generation options ({', '.join(options)})")
        answers: list[dict[str, Any]] = [{} for _ in inputs]
        routes: list[list[str]] = [[] for _ in inputs]
        pending = list(range(len(inputs)))
        for member in self.members:
            if not pending:
                break
            last = member is self.members[-1]
            replies = answer(member.pipeline, [inputs[i] for i in pending], errors if last else "report")
            for i, reply in zip(pending, replies):
                answers[i] = reply
                routes[i].append(member.name)
            pending = [i for i in pending if not self._settled(answers[i], member)]
        for reply, route in zip(answers, routes):
            reply["route"], reply["answered_by"] = route, route[-1]
        return answers

    @staticmethod
    def _settled(reply: dict[str, Any], member: Member) -> bool:
        if member.answer_at is None:
            return True
        return reply.get("prediction") is not None and float(reply.get("confidence", 0.0)) >= member.answer_at


def load_cascade(path: str | Path, **load_options: Any) -> Cascade:
    """Read a cascade file and load its members (``load_options`` go to :func:`~autoglm_sdk.artifact.load`)."""
    from autoglm_sdk.artifact import load

    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read the cascade file ({exc})") from None
    if "cascade" not in raw:
        raise ManifestError(f"{path} has no [cascade] table", hint="a cascade file lists [[cascade.members]]")
    try:
        spec = _CascadeFile.model_validate(raw["cascade"])
    except ValidationError as exc:
        from autoglm_sdk.manifest import describe_errors

        raise ManifestError(f"{path}: {describe_errors('cascade', exc, _CascadeFile.model_fields)[0]}") from None
    members = []
    for item in spec.members:
        pipeline = load(path.parent / item.artifact, **load_options)
        members.append(Member(item.name or pipeline.manifest.pipeline.name, pipeline, item.answer_at))
    names = [m.name for m in members]
    if len(set(names)) < len(names):
        raise ManifestError(f"{path}: two members are called the same ({names}); give each a `name`")
    return Cascade(path, spec.name, members)
