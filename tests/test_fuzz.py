"""Fuzzing the three things users hand the CLI: manifests, `run` inputs and artifacts. Whatever they hold, the
command answers (exit 0) or says what is wrong (exit 2): never an internal error (1) or a traceback."""

from __future__ import annotations

import copy
import json
import shutil
import tomllib
import warnings
from pathlib import Path

import pytest
import tomli_w
from helpers import SMALL
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoglm_cli.app import main
from autoglm_sdk.artifact import LOCK
from autoglm_sdk.builder import build
from autoglm_sdk.manifest import validate_manifest

# derandomized: the suite explores the same cases on every run, so CI does not fail by chance
FUZZ = settings(
    max_examples=25, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)

scalars = st.one_of(
    st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.text(max_size=12)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def exit_code(capsys, *argv: str) -> tuple[int, str]:
    """``autoglm ARGV`` in this process (torch is imported once); the exit code and what went to stderr."""
    shown = warnings.showwarning
    try:
        code = main(list(argv))
    finally:
        warnings.showwarning = shown
    captured = capsys.readouterr()
    return code, captured.err


def paths(tree: dict, prefix: tuple = ()) -> list[tuple]:
    out = []
    for key, value in tree.items():
        out.append((*prefix, key))
        if isinstance(value, dict):
            out += paths(value, (*prefix, key))
    return out


@FUZZ
@given(data=st.data())
def test_any_manifest_validates_or_gets_a_user_error(tmp_path_factory, capsys, data):
    manifest = copy.deepcopy(
        data.draw(st.sampled_from([SMALL, tomllib.loads(Path("examples/kinship.toml").read_text())]))
    )
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.sampled_from(paths(manifest)))
        node = manifest
        for key in where[:-1]:
            node = node[key]
        action = data.draw(st.sampled_from(["set", "delete", "add"]))
        if action == "delete":
            node.pop(where[-1], None)
        elif action == "add":
            node[data.draw(st.text(min_size=1, max_size=10))] = data.draw(values)
        else:
            node[where[-1]] = data.draw(values)
    try:
        text = tomli_w.dumps(manifest)
    except (TypeError, ValueError):
        return  # not representable in TOML (a float NaN key, ...): not a manifest anyone can write
    path = tmp_path_factory.mktemp("m") / "m.toml"
    path.write_text(text)
    code, err = exit_code(capsys, "manifest", "validate", str(path))
    assert code in (0, 2) and "Traceback" not in err and "internal error" not in err, (text, err)


@FUZZ
@given(text=st.text(max_size=200))
def test_any_text_as_a_manifest_is_refused_in_words(tmp_path_factory, capsys, text):
    path = tmp_path_factory.mktemp("t") / "m.toml"
    path.write_text(text)
    code, err = exit_code(capsys, "manifest", "validate", str(path))
    assert code in (0, 2) and "internal error" not in err, (text, err)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    return build(validate_manifest({**SMALL, "train": {"epochs": 2}}), tmp_path_factory.mktemp("a") / "art").path


records = st.one_of(
    values,
    st.fixed_dictionaries({"graph": values}),
    st.fixed_dictionaries({"graph": st.fixed_dictionaries({"x": values, "edge_index": values}), "id": scalars}),
)


@FUZZ
@given(lines=st.lists(st.one_of(records.map(json.dumps), st.text(max_size=30)), min_size=1, max_size=4))
def test_any_run_input_is_answered_or_refused_line_by_line(artifact, tmp_path_factory, capsys, lines):
    path = tmp_path_factory.mktemp("i") / "in.jsonl"
    path.write_text("\n".join(line.replace("\n", " ") for line in lines) + "\n")
    code, err = exit_code(capsys, "run", str(artifact), "--input", str(path))
    assert code in (0, 2) and "internal error" not in err, (lines, err)


@FUZZ
@given(data=st.data())
def test_any_damage_to_an_artifact_is_refused_in_one_line(artifact, tmp_path_factory, capsys, data):
    copy_ = Path(shutil.copytree(artifact, tmp_path_factory.mktemp("d") / "art"))
    files = sorted(p for p in copy_.rglob("*") if p.is_file())
    target = data.draw(st.sampled_from(files))
    content = target.read_bytes()
    how = data.draw(st.sampled_from(["truncate", "flip", "replace", "lock-key"]))
    if how == "truncate":
        target.write_bytes(content[: data.draw(st.integers(0, len(content)))])
    elif how == "flip" and content:
        i = data.draw(st.integers(0, len(content) - 1))
        target.write_bytes(content[:i] + bytes([content[i] ^ 0xFF]) + content[i + 1 :])
    elif how == "replace":
        target.write_bytes(data.draw(st.binary(max_size=64)))
    else:
        lock = tomllib.loads((copy_ / LOCK).read_text())
        where = data.draw(st.sampled_from(paths(lock)))
        node = lock
        for key in where[:-1]:
            node = node[key]
        node[where[-1]] = data.draw(scalars)
        try:
            (copy_ / LOCK).write_text(tomli_w.dumps(lock))
        except (TypeError, ValueError):
            return
    code, err = exit_code(capsys, "run", str(copy_), "--from-data", "test", "--limit", "1")
    assert code in (0, 2) and "internal error" not in err, (how, target.name, err)
