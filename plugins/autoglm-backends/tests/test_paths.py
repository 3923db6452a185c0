"""`autoglm bench --paths`: every execution path of an artifact timed side by side, the fastest that agrees
recommended."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from autoglm_backends.paths import choose


def row(agreement: float, *ms: float, stages=("encoders.text",)) -> dict:
    return {"stages": list(stages), "left_eager": [], "agreement": agreement, "p50_ms": {"1": ms[0], "32": ms[1]}}


def test_the_fastest_path_that_agrees_enough_is_recommended():
    rows = {
        "as built": row(1.0, 10.0, 100.0, stages=()),
        "onnxruntime": row(1.0, 5.0, 90.0),
        "onnxruntime int8": row(0.95, 2.0, 40.0),  # fastest, but changes 5% of the answers
        "compile": {"error": "RuntimeError: no C++ compiler"},
    }
    chosen = choose(rows, min_agreement=0.99)
    assert chosen["recommended"] == "onnxruntime"
    assert "1.16x as fast as the artifact as built" in chosen["reason"]
    assert "onnxruntime int8 left out: agreement below 99%" in chosen["reason"]
    assert choose(rows, min_agreement=0.9)["recommended"] == "onnxruntime int8"


def test_a_path_that_took_no_stage_is_not_a_path():
    rows = {"as built": row(1.0, 10.0, 100.0, stages=()), "onnxruntime": row(1.0, 9.0, 99.0, stages=())}
    assert choose(rows, 0.99)["recommended"] == "as built"


@pytest.mark.slow
def test_bench_paths_times_every_path_and_writes_the_choice(tmp_path):
    from autoglm_sdk import build, validate_manifest

    spec = {
        "pipeline": {"name": "paths", "seed": 0},
        "data": {
            "plugin": "sbm",
            "blocks": 3,
            "nodes_per_block": 30,
            "train_per_class": 5,
            "val_per_class": 5,
            "feature_dim": 8,
        },
        "graph_builder": {"plugin": "given"},
        "reasoner": {"plugin": "mlp", "hidden": 16},
        "decoder": {"plugin": "classifier"},
        "train": {"epochs": 3},
    }
    build(validate_manifest(spec), tmp_path / "art")
    done = subprocess.run(
        [sys.executable, "-m", "autoglm_cli", "bench", str(tmp_path / "art"), "-b", "1", "--seconds", "0"]
        + ["--paths", "-o", str(tmp_path / "b.json")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "fastest path: " in done.stdout
    paths = json.loads((tmp_path / "b.json").read_text())["paths"]
    assert set(paths["paths"]) == {
        "as built",
        "onnxruntime",
        "onnxruntime int8",
        "onnxruntime fused int8",
        "compile",
        "compile int8",
    }
    assert paths["recommended"] in paths["paths"]
    assert all(r.get("agreement", 1.0) >= 0.99 or "error" in r for r in paths["paths"].values())
