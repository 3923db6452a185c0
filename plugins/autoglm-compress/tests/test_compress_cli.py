"""`autoglm compress ARTIFACT --with ... -o OUT`: a compressed copy whose report and lock record every step."""

from __future__ import annotations

import json

import pytest
from helpers import SMALL, run_cli


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    from autoglm_sdk import build, validate_manifest

    path = tmp_path_factory.mktemp("compress") / "art"
    build(validate_manifest({**SMALL, "reasoner": {"plugin": "gcn", "hidden": 128, "layers": 2}}), path)
    return path


def test_compress_writes_a_new_artifact_that_loads_compressed(artifact, tmp_path):
    from autoglm_compress.int8 import Int8Linear
    from autoglm_sdk import load

    out = tmp_path / "small-int8"
    result = run_cli("compress", str(artifact), "--with", "int8", "--with", 'bf16:stages=["decoder"]', "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "int8:" in result.stdout and "bf16:" in result.stdout and "x)" in result.stdout
    report = json.loads((out / "report.json").read_text())
    assert [s["plugin"] for s in report["compression"]] == ["int8", "bf16"]
    assert (
        report["compression"][0]["profile_after"]["bytes"] < 0.4 * report["compression"][0]["profile_before"]["bytes"]
    )
    assert "| weights on disk (bytes) |" in (out / "report.md").read_text()
    pipeline = load(out)
    assert [c.plugin for c in pipeline.manifest.compress] == ["int8", "bf16"]
    assert any(isinstance(m, Int8Linear) for m in pipeline.model.modules())
    (answer,) = pipeline.predict_samples(pipeline.data_split("test"))
    assert answer["accuracy"] == pytest.approx(report["metrics"]["test"]["accuracy"])
    assert (artifact / "weights.safetensors").exists()  # the source artifact is untouched


def test_compress_mistakes_are_one_line_errors(artifact, tmp_path):
    unknown = run_cli("compress", str(artifact), "--with", "int9", "-o", str(tmp_path / "x"))
    assert unknown.returncode == 2 and "int8" in unknown.stderr and "Traceback" not in unknown.stderr
    bad = run_cli("compress", str(artifact), "--with", "int8:min_weights=-1", "-o", str(tmp_path / "y"))
    assert bad.returncode == 2 and "min_weights" in bad.stderr
    (tmp_path / "exists").mkdir()
    taken = run_cli("compress", str(artifact), "--with", "int8", "-o", str(tmp_path / "exists"))
    assert taken.returncode == 2 and "--force" in taken.stderr


def test_parse_with_reads_options_as_toml():
    from autoglm_compress.artifacts import parse_with
    from autoglm_sdk.plugin import ManifestError

    assert parse_with("int8") == {"plugin": "int8"}
    assert parse_with('prune:amount=0.5,stages=["a", "b"],name=x') == {
        "plugin": "prune",
        "amount": 0.5,
        "stages": ["a", "b"],
        "name": "x",
    }
    with pytest.raises(ManifestError, match="expected NAME"):
        parse_with(":amount=1")
    with pytest.raises(ManifestError, match="not an option name"):
        parse_with("int8:a.b=1")
