"""Nothing lost and nothing silently wrong: concurrent builds, tampered artifacts, bad records."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from helpers import REPO, SMALL, run_cli, write_toml

from autoglm_sdk.artifact import LOCK, WEIGHTS, file_hashes, load, output_lock
from autoglm_sdk.builder import build
from autoglm_sdk.errors import ArtifactError
from autoglm_sdk.manifest import validate_manifest


@pytest.fixture
def held_lock(tmp_path):
    """Another process holding the build lock of ``tmp_path / "art"``, as a running build does."""
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from autoglm_sdk.artifact import LOCK, WEIGHTS, file_hashes, load, output_lock
        with output_lock({str(tmp_path / "art")!r}):
            print("locked", flush=True)
            time.sleep(60)
        """
    )
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    yield holder
    holder.kill()
    holder.wait()


def test_a_second_build_of_the_same_output_is_refused_at_once_naming_the_holder(tmp_path, held_lock):
    with pytest.raises(ArtifactError, match=f"being built by process {held_lock.pid}"):
        build(validate_manifest(SMALL), tmp_path / "art")
    path = write_toml(tmp_path / "m.toml", SMALL)
    proc = run_cli("build", str(path), "-o", str(tmp_path / "art"), "--force", "--quiet")
    assert proc.returncode == 2 and f"is being built by process {held_lock.pid}" in proc.stderr, proc.stderr
    # the refused builds touched nothing: no checkpoint of theirs, no artifact
    assert sorted(p.name for p in tmp_path.iterdir()) == [".art.lock", "m.toml"]


def test_the_lock_goes_with_its_holder_and_leaves_no_file(tmp_path, held_lock):
    held_lock.kill()  # kill -9: the kernel drops the lock with the process
    held_lock.wait()
    result = build(validate_manifest({**SMALL, "train": {"epochs": 2}}), tmp_path / "art")
    assert result.path.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art"]
    with pytest.raises(ArtifactError, match="already exists"):  # refused before training: no checkpoint appears
        build(validate_manifest(SMALL), tmp_path / "art")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art"]
    with output_lock(tmp_path / "art"):  # a lock is taken again once released
        pass


# ------------------------------------------------------------ tampered artifacts


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build(validate_manifest({**SMALL, "train": {"epochs": 2}}), tmp_path_factory.mktemp("b") / "art").path


@pytest.fixture
def copy(built, tmp_path):
    """A private copy of the built artifact to damage."""
    import shutil

    return Path(shutil.copytree(built, tmp_path / "art"))


def edit_lock(artifact: Path, change) -> None:
    """Apply ``change`` to the parsed lock file and write it back (a user's or a disk's edit)."""
    import tomli_w

    data = tomllib.loads((artifact / LOCK).read_text())
    change(data)
    (artifact / LOCK).write_text(tomli_w.dumps(data))


def rehash(artifact: Path) -> None:
    """Record the files' current hashes, so that the checks behind the hash check are reached."""
    edit_lock(artifact, lambda data: data.update(files=file_hashes(artifact)))


def refused(artifact: Path, *fragments: str) -> str:
    """Loading ``artifact`` fails with a one-line ArtifactError containing every fragment; the CLI exits 2."""
    with pytest.raises(ArtifactError) as info:
        load(artifact)
    message = info.value.message
    assert "\n" not in message and all(f in message for f in fragments), message
    proc = run_cli("run", str(artifact), "--from-data", "test", "--limit", "1")
    assert proc.returncode == 2 and "internal error" not in proc.stderr, proc.stderr
    return message


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda w: w.write_bytes(pickle.dumps({"weight": [1.0, 2.0]})), id="pickle"),
        pytest.param(lambda w: w.write_bytes(b""), id="empty"),
        pytest.param(lambda w: w.write_bytes(w.read_bytes()[: w.stat().st_size // 2]), id="truncated"),
    ],
)
def test_damaged_weights_are_refused_naming_the_file(copy, damage):
    damage(copy / WEIGHTS)
    refused(copy, str(copy / WEIGHTS), "has changed since the artifact was written")
    rehash(copy)  # even with a lock that agrees, the file itself is refused, not half-read
    refused(copy, str(copy / WEIGHTS), "not a readable safetensors file")


def test_a_link_out_of_the_artifact_is_refused(copy, tmp_path):
    outside = tmp_path / "elsewhere.safetensors"
    (copy / WEIGHTS).rename(outside)
    (copy / WEIGHTS).symlink_to(outside)
    refused(copy, str(copy / WEIGHTS), "outside the artifact")


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda d: d.pop("manifest"), "`manifest` field required"),
        (lambda d: d.pop("ports"), "`ports` field required"),
        (lambda d: d["task"].update(num_classes="four"), "`task.num_classes` input should be a valid integer"),
        (lambda d: d["task"].update(label_names=["2", "a"]), "`task` has 2 label_names for 3 classes"),
        (lambda d: d["ports"]["reasoner"].update(type="tensor"), "`ports.reasoner.type`"),
    ],
)
def test_a_tampered_lock_is_refused_naming_the_key(copy, change, key):
    edit_lock(copy, change)
    refused(copy, str(copy / LOCK), key)


def test_weights_of_another_shape_are_refused_in_one_line(copy):
    edit_lock(copy, lambda d: d["manifest"]["reasoner"].update(hidden=32))
    refused(copy, str(copy / WEIGHTS), "has shape", "the pipeline expects")


def test_weights_missing_a_tensor_are_refused_naming_it(copy):
    from safetensors.torch import load_file, save_file

    tensors = load_file(copy / WEIGHTS)
    dropped = sorted(tensors)[0]
    save_file({k: v for k, v in tensors.items() if k != dropped}, copy / WEIGHTS)
    rehash(copy)  # a lock that agrees with the file: the plugin's parameters are what no longer match
    refused(copy, str(copy / WEIGHTS), "weights do not match the pipeline", f"missing ['{dropped}']")


# ------------------------------------------------------------ the small things


def test_every_command_shows_flags_as_flags_and_an_example():
    commands = [["build"], ["run"], ["doctor"], ["compress"], ["bench"], ["search"]]
    commands += [["plugins", c] for c in ("list", "info", "check")] + [["manifest", c] for c in ("validate", "schema")]
    for command in commands:
        proc = run_cli(*command, "--help")
        assert proc.returncode == 0, proc.stderr
        assert "Example" in proc.stdout and "<bool>" not in proc.stdout, (command, proc.stdout)
    assert "--force  " in run_cli("build", "--help").stdout
    completion = run_cli("--show-completion", "bash")
    assert completion.returncode == 0 and "_autoglm_completion" in completion.stdout


def test_verbosity_json_and_split_aliases(built, tmp_path):
    path = write_toml(tmp_path / "m.toml", {**SMALL, "train": {"epochs": 2}})
    loud = run_cli("build", str(path), "-o", str(tmp_path / "a"), "--json")
    assert "loading data from `sbm`" in loud.stderr
    result = json.loads(loud.stdout)  # status lines go to stderr, the JSON alone to stdout
    assert result["path"] == str(tmp_path / "a") and 0 <= result["metrics"]["test"]["accuracy"] <= 1
    quiet = run_cli("-q", "build", str(path), "-o", str(tmp_path / "b"))
    assert quiet.returncode == 0 and "loading data" not in quiet.stderr and "training" not in quiet.stderr
    bad = run_cli("--log-level", "loud", "doctor")
    assert bad.returncode == 2 and "--log-level loud: unknown level" in bad.stderr
    info = json.loads(run_cli("plugins", "info", "gcn", "--json").stdout)
    assert info["kind"] == "reasoner" and any(row["key"] == "layers" for row in info["config"])
    dev = run_cli("run", str(built), "--from-data", "dev", "--limit", "1")
    assert dev.returncode == 0 and "accuracy" in json.loads(dev.stdout)


def test_the_python_api_is_callable_short_and_shows_progress(built, tmp_path):
    pipeline = load(built)
    assert repr(pipeline).startswith(f"Pipeline('{built}': data sbm -> graph_builder given -> reasoner gcn")
    assert len(repr(pipeline)) < 300
    graph = {"graph": {"x": [[0.1] * 8] * 2, "edge_index": [[0], [1]]}}
    assert pipeline(graph) == pipeline.predict([graph])
    seen = []
    build(validate_manifest({**SMALL, "train": {"epochs": 3}}), tmp_path / "p", progress=seen.append)
    assert [m["epoch"] for m in seen] == [1, 2, 3] and all("train_loss" in m for m in seen)


def test_reports_carry_per_class_figures_and_a_readable_confusion_matrix(built, tmp_path, monkeypatch):
    import matplotlib.figure

    from autoglm_sdk.report import plot_confusion

    test = json.loads((built / "report.json").read_text())["metrics"]["test"]
    assert set(test["per_class"]) == {"community-0", "community-1", "community-2"} and test["abstained"] == 0
    confusion = test["confusion"]
    for i, row in enumerate(test["per_class"].values()):  # agrees with the confusion matrix it sits beside
        assert row["support"] == sum(confusion[i])
        assert row["recall"] == pytest.approx(confusion[i][i] / max(sum(confusion[i]), 1))
    assert "| class | precision | recall | F1 | samples |" in (built / "report.md").read_text()
    seen = {}

    def record(fig, path, *args, **kwargs):
        ax = fig.axes[0]
        seen["rows"] = [t.get_text() for t in ax.get_yticklabels()]
        seen["cells"] = sorted(t.get_text() for t in ax.texts)
        seen["colour bar"] = len(fig.axes) == 2

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", record)
    plot_confusion([[3, 1, 0], [0, 0, 0], [2, 0, 5]], ["a", "b", "c"], tmp_path / "c.png")
    assert seen == {"rows": ["a", "b (no samples)", "c"], "cells": ["1", "2", "3", "5"], "colour bar": True}
