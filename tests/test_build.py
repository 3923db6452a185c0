"""Building, loading and answering: artifacts are complete, deterministic and safe to load."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import torch
from helpers import SMALL, run_cli
from safetensors.torch import load_file

import autoglm_sdk
from autoglm_sdk.artifact import LOCK, REPORT_JSON, REPORT_MD, WEIGHTS, load
from autoglm_sdk.builder import build
from autoglm_sdk.errors import ArtifactError, InputError
from autoglm_sdk.hooks import hookimpl, plugin_manager
from autoglm_sdk.manifest import validate_manifest


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    return build(validate_manifest(SMALL), tmp_path_factory.mktemp("a") / "art").path


def test_artifact_layout(artifact):
    names = {p.name for p in artifact.iterdir()}
    assert {LOCK, WEIGHTS, REPORT_JSON, REPORT_MD, "training_curve.png"} <= names
    assert not any(p.suffix in (".pt", ".pkl", ".pickle", ".bin") for p in artifact.iterdir())
    lock = tomllib.loads((artifact / LOCK).read_text())
    assert lock["autoglm"]["sdk_version"] == autoglm_sdk.__version__ and lock["autoglm"]["contract_version"] == 1
    assert lock["plugins"]["reasoner"] == {
        "plugin": "gcn",
        "kind": "reasoner",
        "distribution": "autoglm-graph",
        "version": "0.1.0",
    }
    assert lock["plugins"]["scheduler"]["distribution"] == "autoglm-backends"
    assert lock["manifest"]["pipeline"]["seed"] == 0 and lock["manifest"]["reasoner"]["dropout"] == 0.5
    assert len(lock["data"]["fingerprint"]) == 64
    report = json.loads((artifact / REPORT_JSON).read_text())
    assert report["backend"]["stages"]["reasoner"] == "cpu"
    assert report["model"]["weights_bytes"] == (artifact / WEIGHTS).stat().st_size
    assert report["metrics"]["test"]["accuracy"] > 0.6, report["metrics"]  # 3 communities: chance is 1/3
    assert "![training curve](training_curve.png)" in (artifact / REPORT_MD).read_text()


def test_same_seed_same_metrics_and_weights(artifact, tmp_path):
    again = build(validate_manifest(SMALL), tmp_path / "again")
    first = json.loads((artifact / REPORT_JSON).read_text())
    assert again.report["metrics"] == first["metrics"]
    assert again.report["training"]["history"] == first["training"]["history"]
    a, b = load_file(str(artifact / WEIGHTS)), load_file(str(again.path / WEIGHTS))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_other_seed_other_weights(artifact, tmp_path):
    other = build(validate_manifest({**SMALL, "pipeline": {"name": "small", "seed": 1}}), tmp_path / "other")
    a, b = load_file(str(artifact / WEIGHTS)), load_file(str(other.path / WEIGHTS))
    assert not all(torch.equal(a[k], b[k]) for k in a)


def test_load_and_predict_records(artifact):
    pipeline = autoglm_sdk.load(artifact)
    record = {"id": "g", "graph": {"x": [[0.0] * 8, [1.0] * 8, [0.5] * 8], "edge_index": [[0, 1], [1, 2]]}}
    (answer,) = pipeline.predict([record])
    assert answer["id"] == "g" and len(answer["predictions"]) == 3
    assert set(answer["predictions"]) <= {"community-0", "community-1", "community-2"}
    with pytest.raises(InputError, match="record 1: graph.x rows must have 8 features, got 2"):
        pipeline.predict([{"graph": {"x": [[1.0, 2.0]], "edge_index": [[], []]}}])
    with pytest.raises(InputError, match="unknown key `txt`"):
        pipeline.predict([{"txt": "hello", "graph": record["graph"]}])


def test_loaded_pipeline_reproduces_the_reported_test_accuracy(artifact):
    report = json.loads((artifact / REPORT_JSON).read_text())
    result = run_cli("run", str(artifact), "--from-data", "test")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.splitlines()[0])
    assert answer["accuracy"] == pytest.approx(report["metrics"]["test"]["accuracy"], abs=1e-6)


def test_shared_weights_survive_the_artifact_round_trip(tmp_path):
    """Rounds that share one convolution are stored once and tied again on load."""
    manifest = {
        **SMALL,
        "reasoner": {"plugin": "gcn", "hidden": 16, "layers": 4, "share_weights": True},
        "train": {"epochs": 5},
    }
    result = build(validate_manifest(manifest), tmp_path / "shared")
    pipeline = load(result.path)
    convs = pipeline.model.stages["reasoner"].convs
    assert convs[1].lin.weight is convs[3].lin.weight
    (answer,) = pipeline.predict_samples(pipeline.data_split("test"))
    assert answer["accuracy"] == pytest.approx(result.report["metrics"]["test"]["accuracy"], abs=1e-6)


def test_run_reads_json_lines_from_stdin_and_reports_bad_lines(artifact):
    good = json.dumps({"graph": {"x": [[0.1] * 8] * 2, "edge_index": [[0], [1]]}})
    proc = run_cli("run", str(artifact), stdin=good + "\n\n" + good + "\n")
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 2
    # a bad record costs only its own answer: the others are answered, it is named by line, the exit is 2
    bad_x = json.dumps({"graph": {"x": [[0.1] * 3] * 2, "edge_index": [[0], [1]]}, "id": "short"})
    proc = run_cli("run", str(artifact), stdin="\n".join([good, "{oops", bad_x, good, '"text"']) + "\n")
    assert proc.returncode == 2
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(lines) == 5 and ["error" in line for line in lines] == [False, True, True, False, True]
    assert lines[1] == {
        "input": "<stdin>:2",
        "error": "<stdin>:2: not valid JSON (Expecting property name enclosed in double quotes at column 2)",
    }
    assert "error: <stdin>:3: graph.x rows must have 8 features, got 3" in proc.stderr
    assert "error: <stdin>:5: expected a JSON object" in proc.stderr
    assert "3 of 5 inputs could not be answered (the others were)" in proc.stderr


def test_loading_never_unpickles_and_checks_completeness(artifact, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    with pytest.raises(ArtifactError, match="has no manifest.lock.toml"):
        load(broken)
    (broken / LOCK).write_text((artifact / LOCK).read_text())
    with pytest.raises(ArtifactError, match="has no weights.safetensors"):
        load(broken)
    proc = run_cli("run", str(tmp_path / "missing"), "--from-data", "test")
    assert proc.returncode == 2 and "is not an artifact directory" in proc.stderr


def test_existing_output_needs_force(artifact):
    with pytest.raises(ArtifactError, match="already exists"):
        build(validate_manifest(SMALL), artifact)


class Interrupt:
    @hookimpl
    def autoglm_epoch_ended(self, epoch, metrics):
        if epoch == 3:
            raise KeyboardInterrupt


def test_interrupted_build_leaves_no_artifact(tmp_path):
    pm = plugin_manager()
    plugin = Interrupt()
    pm.register(plugin)
    try:
        with pytest.raises(KeyboardInterrupt):
            build(validate_manifest(SMALL), tmp_path / "art")
    finally:
        pm.unregister(plugin)
    # only the checkpoint that `--resume` continues from: no artifact, no temporary directory
    assert [p.name for p in tmp_path.iterdir()] == ["art.checkpoint"], "an interrupted build left files behind"


class Recorder:
    def __init__(self):
        self.events = []

    @hookimpl
    def autoglm_build_started(self, manifest, output):
        self.events.append(("started", manifest["pipeline"]["name"]))

    @hookimpl
    def autoglm_epoch_ended(self, epoch, metrics):
        self.events.append(("epoch", epoch, "val_accuracy" in metrics))

    @hookimpl
    def autoglm_artifact_written(self, path, report):
        self.events.append(("written", Path(path).name))


def test_hooks_see_the_build(tmp_path):
    pm, recorder = plugin_manager(), Recorder()
    pm.register(recorder)
    try:
        build(validate_manifest({**SMALL, "train": {"epochs": 2}}), tmp_path / "art")
    finally:
        pm.unregister(recorder)
    assert recorder.events == [("started", "small"), ("epoch", 1, True), ("epoch", 2, True), ("written", "art")]


def test_cli_build_writes_artifact_and_summary(small_manifest, tmp_path):
    out = tmp_path / "cli-art"
    proc = run_cli("build", str(small_manifest), "-o", str(out), "--set", "train.epochs=3")
    assert proc.returncode == 0, proc.stderr
    assert f"built {out}" in proc.stdout and "test accuracy" in proc.stdout
    assert "training" in proc.stderr  # the progress bar
    assert (out / LOCK).exists()


def test_graph_level_pipeline_trains_pools_and_answers(tmp_path):
    """Graph classification end to end: minibatches, pooling, per-graph answers."""
    manifest = validate_manifest(
        {
            "pipeline": {"name": "shapes", "seed": 0},
            "data": {"plugin": "fixture_plugins:spec"},
            "graph_builder": {"plugin": "given"},
            "reasoner": {"plugin": "gcn", "hidden": 16, "dropout": 0.0},
            "decoder": {"plugin": "classifier", "pooling": "mean"},
            "train": {"epochs": 40, "batch_size": 8, "lr": 0.02},
        },
        allow_import_paths=True,
    )
    result = build(manifest, tmp_path / "shapes")
    assert result.report["task"]["level"] == "graph"
    assert result.report["metrics"]["test"]["count"] == 24
    assert result.report["metrics"]["test"]["accuracy"] >= 0.9, result.report["metrics"]
    with pytest.raises(Exception, match="import path"):
        load(result.path)
    pipeline = load(result.path, allow_import_paths=True)
    star = {
        "graph": {
            "x": [[1.0, 0.8], [1.0, 0.2], [1.0, 0.2], [1.0, 0.2], [1.0, 0.2]],
            "edge_index": [[0, 0, 0, 0, 1, 2, 3, 4], [1, 2, 3, 4, 0, 0, 0, 0]],
        },
        "label": 0,
    }
    (answer,) = pipeline.predict([star])
    assert answer["prediction"] == "star" and answer["label"] == "star" and 0.5 < answer["confidence"] <= 1


def test_compress_sections_are_applied_in_order_and_reported(tmp_path):
    from safetensors.torch import load_file

    manifest = validate_manifest(
        {**SMALL, "compress": [{"plugin": "fixture_plugins:zero_small", "fraction": 0.5}]}, allow_import_paths=True
    )
    report = build(manifest, tmp_path / "c").report
    (step,) = report["compression"]
    assert step["plugin"] == "fixture_plugins:zero_small" and step["metrics_after"] == report["metrics"]
    weights = load_file(str(tmp_path / "c" / WEIGHTS))
    matrices = [t for t in weights.values() if t.dim() == 2]
    assert all((t == 0).float().mean() >= 0.5 for t in matrices)


def test_inputs_only_on_stages():
    from autoglm_sdk.errors import ManifestError

    with pytest.raises(ManifestError, match="data.inputs: only pipeline stages"):
        validate_manifest({**SMALL, "data": {**SMALL["data"], "inputs": ["decoder"]}})
