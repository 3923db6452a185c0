"""The tri-modal example builds end to end at a size a test can afford, and reports cross-modal figures."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "digits-trimodal.toml"


def test_digits_trimodal_builds_and_reports_crossmodal_figures(tmp_path):
    from autoglm_sdk import build, load, load_manifest

    manifest = load_manifest(
        EXAMPLE,
        [
            "data.samples_per_digit=6",
            "data.speeds=[165]",
            "data.pitches=[50]",
            f"data.cache_dir='{tmp_path / 'speech'}'",
            "train.epochs=2",
            "encoders.audio.max_seconds=1.0",
            "objectives.pretraining.epochs=1",
            "objectives.pretraining.stage_epochs={}",
        ],
    )
    report = build(manifest, tmp_path / "art").report
    crossmodal = report["evaluations"]["crossmodal"]["figures"]
    assert set(crossmodal) == {"clean", "audio noise 10 dB SNR", "image 3x3 occlusion"}
    assert set(crossmodal["clean"]["accuracy_by_modalities"]) >= {"audio", "image", "text", "audio+image"}
    assert set(crossmodal["clean"]["retrieval"]) >= {"image→audio", "audio→image", "text→image", "image→text"}
    assert (tmp_path / "art" / "shared_space.png").exists()
    assert "## Cross-modal retrieval" in (tmp_path / "art" / "report.md").read_text()
    pipeline = load(tmp_path / "art")
    sample = pipeline.data_split("test")[0]
    (answer,) = pipeline.predict_samples([{"image": sample["image"], "label": sample["label"]}])  # image alone
    assert answer["prediction"] in pipeline.task.label_names
