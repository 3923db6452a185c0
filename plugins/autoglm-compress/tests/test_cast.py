"""bf16 / fp16: half the bytes on disk, float32 at the stage boundaries, and artifacts that load cast."""

from __future__ import annotations

import pytest
import torch
from helpers import SMALL

from autoglm_compress.cast import cast_floats
from autoglm_sdk.testing import CompressorContract


class TestBf16Contract(CompressorContract):
    plugin = "bf16"


class TestFp16Contract(CompressorContract):
    plugin = "fp16"


def test_cast_floats_reaches_inside_graphs_and_dataclasses_but_not_integers():
    from autoglm_sdk.plugin import EncoderOutput, SemanticGraph

    graph = SemanticGraph(x=torch.randn(3, 2), edge_index=torch.tensor([[0, 1], [1, 2]]))
    out = EncoderOutput(torch.randn(1, 2, 4), torch.ones(1, 2, dtype=torch.bool), torch.randn(1, 4))
    cast = cast_floats({"g": graph, "e": out, "ids": torch.arange(3), "samples": [{"text": "a"}]}, torch.bfloat16)
    assert cast["g"].x.dtype == torch.bfloat16 and cast["g"].edge_index.dtype == torch.long
    assert graph.x.dtype == torch.float32  # the caller's graph is not changed
    assert (
        cast["e"].states.dtype == torch.bfloat16 and cast["e"].mask.dtype == torch.bool and cast["e"].embedding is None
    )
    assert cast["ids"].dtype == torch.long and cast["samples"] == [{"text": "a"}]


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    from autoglm_sdk import build, validate_manifest

    root = tmp_path_factory.mktemp("cast")
    reports = {}
    for name, compress in (("fp32", []), ("bf16", [{"plugin": "bf16"}]), ("fp16", [{"plugin": "fp16"}])):
        # wide enough that the weights, not the safetensors header, make up the file
        manifest = validate_manifest(
            {**SMALL, "reasoner": {"plugin": "gcn", "hidden": 128, "layers": 2}, "compress": compress}
        )
        reports[name] = build(manifest, root / name).report
    return root, reports


@pytest.mark.parametrize("kind", ["bf16", "fp16"])
def test_cast_halves_the_weights_and_keeps_accuracy(builds, kind):
    _, reports = builds
    step = reports[kind]["compression"][0]
    assert step["profile_after"]["bytes"] < 0.6 * step["profile_before"]["bytes"]
    assert step["profile_after"]["parameters"] == step["profile_before"]["parameters"]
    assert reports[kind]["model"]["weights_bytes"] < 0.6 * reports["fp32"]["model"]["weights_bytes"]
    for split in ("val", "test"):
        assert abs(step["metrics_after"][split]["accuracy"] - step["metrics_before"][split]["accuracy"]) <= 0.05
    for key in ("p50_ms_batch1", "p90_ms_batch1", "p50_ms_batch32", "p90_ms_batch32"):
        assert step["profile_after"][key] > 0


@pytest.mark.parametrize("kind", ["bf16", "fp16"])
def test_a_cast_artifact_loads_cast_and_answers_like_the_build(builds, kind):
    from autoglm_sdk import load

    root, reports = builds
    pipeline = load(root / kind)
    dtypes = {p.dtype for p in pipeline.model.parameters()}
    assert dtypes == {getattr(torch, {"bf16": "bfloat16", "fp16": "float16"}[kind])}
    answers = pipeline.predict_samples(pipeline.data_split("test"))
    assert len(answers) == 1 and answers[0]["accuracy"] == pytest.approx(reports[kind]["metrics"]["test"]["accuracy"])


def test_report_has_the_before_after_table(builds):
    root, _ = builds
    markdown = (root / "bf16" / "report.md").read_text()
    assert "| weights on disk (bytes) |" in markdown and "| latency p90, batch 32 (ms) |" in markdown
    assert "validation accuracy" in markdown


def test_unknown_stage_is_named():
    from autoglm_sdk import build, validate_manifest
    from autoglm_sdk.plugin import ManifestError

    manifest = validate_manifest(
        {**SMALL, "train": {"epochs": 1}, "compress": [{"plugin": "bf16", "stages": ["reasoner2"]}]}
    )
    with pytest.raises(ManifestError, match=r"bf16.stages: `reasoner2` is not a stage of this pipeline"):
        build(manifest, "/tmp/never-written-cast")
