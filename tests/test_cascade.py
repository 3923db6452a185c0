"""Cascades: the first member answers what it is sure of, the next one the rest; routes are reported; a wrong
cascade file is a one-line error naming what to change."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import SMALL, run_cli, write_toml

from autoglm_sdk import build, load, validate_manifest
from autoglm_sdk.cascade import Cascade
from autoglm_sdk.errors import ArtifactError, InputError, ManifestError


def kinship(epochs: int, states: int) -> dict:
    return {
        "pipeline": {"name": f"kin{epochs}"},
        "data": {
            "plugin": "kinship",
            "train": {"hops": [1, 2], "stories": 300},
            "val": {"hops": [2], "stories": 30},
            "test": {"hops": [2, 3, 4], "stories": 60},
        },
        "graph_builder": {"plugin": "text-relations"},
        "reasoner": {"plugin": "path-composer", "states": states},
        "decoder": {"plugin": "classifier", "readout": "target"},
        "train": {"epochs": epochs, "lr": 0.05},
    }


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cascade")
    build(validate_manifest(kinship(1, 4)), root / "cheap")
    build(validate_manifest(kinship(4, 8)), root / "large")
    return root


def cascade_file(root: Path, answer_at: float | None = 0.5, **extra) -> Path:
    members = [{"artifact": "cheap", "answer_at": answer_at}, {"artifact": "large"}]
    if answer_at is None:
        del members[0]["answer_at"]
    return write_toml(root / "cascade.toml", {"cascade": {"name": "kin", "members": members, **extra}})


def test_unsure_answers_go_on_and_the_rest_stay(artifacts):
    cheap, large = load(artifacts / "cheap"), load(artifacts / "large")
    samples = large.data_split("test")
    first = cheap.predict_samples(samples)
    confidences = sorted(a.get("confidence", 0.0) for a in first if a["prediction"] is not None)
    threshold = confidences[len(confidences) // 2]  # about half go on
    cascade = load(cascade_file(artifacts, threshold))
    assert isinstance(cascade, Cascade)
    answers = cascade.predict_samples(samples)
    second = large.predict_samples(samples)
    escalated = [a["prediction"] is None or a["confidence"] < threshold for a in first]
    assert 0 < sum(escalated) < len(samples)
    for answer, went_on, a, b in zip(answers, escalated, first, second):
        if went_on:
            assert answer["route"] == ["kin1", "kin4"] and answer["answered_by"] == "kin4"
            assert answer["prediction"] == b["prediction"]
        else:
            assert answer["route"] == ["kin1"] and answer["prediction"] == a["prediction"]


def test_records_an_unreadable_one_and_the_cli_show_routes(artifacts):
    path = cascade_file(artifacts, 0.5)
    cascade = load(path)
    story = "Anna is Ben's mother. Ben's sister is Clara. How is Clara related to Anna?"
    answers = cascade.predict([story, {"image": [1]}], errors="report")
    assert answers[0]["answered_by"] in ("kin1", "kin4") and answers[0]["prediction"]
    assert "error" in answers[1] and answers[1]["route"] == ["kin1", "kin4"]  # each member tried it
    with pytest.raises(InputError, match="no generation options"):
        cascade.predict([story], max_new_tokens=3)
    result = run_cli("run", str(path), "--from-data", "test", "--limit", "3")
    assert result.returncode == 0, result.stderr
    assert '"route": ["kin1"' in result.stdout


def test_a_cascade_serves_like_an_artifact(artifacts):
    from fastapi.testclient import TestClient

    from autoglm_serve.server import create_app

    cascade = load(cascade_file(artifacts, 0.5))
    story = "Anna is Ben's mother. Ben's sister is Clara. How is Clara related to Anna?"
    with TestClient(create_app({"kin": cascade})) as client:
        reply = client.post("/v1/predict", json={"inputs": [story]})
        assert reply.status_code == 200, reply.text
        assert reply.json()["answers"][0]["route"] == cascade.predict([story])[0]["route"]


@pytest.mark.parametrize(
    ("answer_at", "extra", "message"),
    [
        (None, {}, "member 1 (cheap) needs `answer_at`"),
        (1.5, {}, "cascade.members.0.answer_at: must be <= 1, got 1.5"),
        (0.5, {"members_": 1}, "cascade.members_: unknown key; did you mean `members`"),
    ],
)
def test_a_wrong_cascade_file_says_what_to_change(artifacts, answer_at, extra, message):
    with pytest.raises(ManifestError, match=re.escape(message)):
        load(cascade_file(artifacts, answer_at, **extra))


def test_members_must_share_labels_and_task(artifacts, tmp_path):
    build(validate_manifest(SMALL), tmp_path / "sbm")
    mixed = {"cascade": {"members": [{"artifact": str(artifacts / "cheap"), "answer_at": 0.5}, {"artifact": "sbm"}]}}
    with pytest.raises(ArtifactError, match="member `small` has task classify \\(node level\\)"):
        load(write_toml(tmp_path / "mixed.toml", mixed))
    last = {"cascade": {"members": [{"artifact": str(artifacts / "cheap"), "answer_at": 0.5}, {"artifact": "x"}]}}
    last["cascade"]["members"][1]["answer_at"] = 0.9
    with pytest.raises(ManifestError, match="remove its `answer_at`"):
        load(write_toml(tmp_path / "last.toml", last))


def test_building_a_cascade_file_says_it_is_not_a_manifest():
    with pytest.raises(ManifestError, match="is a cascade of built artifacts, not a pipeline manifest"):
        validate_manifest({"cascade": {"members": []}}, source="c.toml")


def test_a_member_that_cannot_read_a_sample_passes_it_on(artifacts):
    cascade = load(cascade_file(artifacts, 0.5))
    good = load(artifacts / "large").data_split("test")[0]
    unreadable = {**good, "text": "Anna is Ben's mother."}  # no question: text-relations refuses it
    answers = cascade.predict_samples([good, unreadable], errors="report")
    assert answers[0]["prediction"] and "no question found" in answers[1]["error"]
    assert answers[1]["route"] == ["kin1", "kin4"]
    with pytest.raises(InputError, match="no question found"):  # the last member's refusal follows `errors`
        cascade.predict_samples([unreadable])
