"""The model-level API: AutoGLMConfig -> manifest, AutoGLMModel.from_config / from_pretrained / save_pretrained /
generate / summary, and the README's three lines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import autoglm_sdk
from autoglm_sdk import AutoGLMConfig, AutoGLMModel, validate_manifest
from autoglm_sdk.plugin import ManifestError

REPO = Path(__file__).resolve().parents[3]
TINY_DATA = {
    "plugin": "kinship",
    "train": {"hops": [1, 2], "stories": 100},
    "val": {"hops": [2], "stories": 12},
    "test": {"hops": [2, 3], "stories": 12},
}


def tiny_config(**changes: object) -> AutoGLMConfig:
    settings = {
        "vocab_size": 400,
        "hidden_size": 32,
        "num_layers": 1,
        "num_heads": 2,
        "reasoner_options": {"states": 8},
        "data": TINY_DATA,
        "train": {"epochs": 1, "lr": 0.01, "batch_size": 16},
        "extra": {"decoder": {"max_new_tokens": 10}},
    }
    return AutoGLMConfig(**{**settings, **changes})


def test_a_config_is_a_manifest_with_the_graph_on_or_off():
    on = validate_manifest(tiny_config().to_manifest())
    assert list(on.stages) == ["data", "graph_builder", "reasoner", "decoder"]
    assert on.stages["decoder"].inputs == ["reasoner", "data"] and on.pipeline.task == "generate"
    assert on.stages["decoder"].config.hidden_size == 32 and on.stages["decoder"].config.max_new_tokens == 10
    off = validate_manifest(tiny_config(graph=False).to_manifest())
    assert list(off.stages) == ["data", "decoder"] and off.stages["decoder"].config.prompt == "{text}"
    classify = validate_manifest(tiny_config(decoder="classifier", extra={}).to_manifest())
    assert classify.pipeline.task == "classify" and classify.stages["decoder"].plugin == "classifier"
    assert AutoGLMConfig.from_dict(tiny_config().to_dict()) == tiny_config()
    with pytest.raises(ManifestError, match="AutoGLMConfig: unknown key `hidden`"):
        AutoGLMConfig.from_dict({"hidden": 3})


@pytest.mark.slow
def test_from_config_builds_and_the_readme_three_lines_load_and_generate(tmp_path: Path, monkeypatch):
    model = AutoGLMModel.from_config(tiny_config(), tmp_path / "artifacts" / "kinship-generate")
    summary = model.summary()
    assert list(summary["stages"]) == ["data", "graph_builder", "reasoner", "decoder"]
    assert summary["stages"]["decoder"]["parameters"] > 0 and summary["task"]["kind"] == "generate"
    story = "Anna is Ben's mother. Ben's sister is Clara. How is Clara related to Anna?"
    first = model.generate(story)
    assert len(first) == 1 and isinstance(first[0], str)
    saved = model.save_pretrained(tmp_path / "copy")
    again = AutoGLMModel.from_pretrained(saved)
    assert isinstance(autoglm_sdk.load(saved), AutoGLMModel) and again.generate(story) == first
    # the README's lines, as written, from a folder holding the artifact
    readme = (REPO / "README.md").read_text()
    block = re.search(r"```python\n(from autoglm_sdk import AutoGLMModel\n.*?)```", readme, flags=re.S)
    assert block, "the README's from_pretrained example is gone"
    lines = [line for line in block.group(1).splitlines() if line.strip()]
    assert len(lines) == 3, lines
    monkeypatch.chdir(tmp_path)
    exec(compile(block.group(1), "README.md", "exec"), {})
