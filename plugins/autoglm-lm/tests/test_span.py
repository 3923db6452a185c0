"""span-extractor in pipelines: who-questions on kinship stories answered with a span, the graph's states on name
tokens, the answer head and answer-pretraining, errors a user can make, and the artifact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoglm_sdk import validate_manifest
from autoglm_sdk.plugin import DataError, InputError, ManifestError

TINY = {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64, "vocab_size": 400}


def manifest(**decoder: object) -> dict:
    return {
        "pipeline": {"name": "qa", "task": "extractive-qa", "target_field": "answer"},
        "data": {
            "plugin": "kinship",
            "ask": "person",
            "train": {"hops": [1, 2], "stories": 200},
            "val": {"hops": [1, 2], "stories": 20},
            "test": {"hops": [2, 4], "stories": 20},
        },
        "graph_builder": {"plugin": "text-relations"},
        "reasoner": {"plugin": "path-composer", "states": 8},
        "decoder": {"plugin": "span-extractor", "inputs": ["reasoner", "data"], **TINY, **decoder},
        "train": {"epochs": 2, "lr": 0.003, "batch_size": 16},
    }


def test_a_built_extractor_answers_with_spans_of_the_text_and_reloads(tmp_path: Path):
    from autoglm_sdk import build, load

    raw = manifest(answer_weight=1.0)
    raw["objectives"] = {"answer": {"plugin": "answer-pretraining", "epochs": 2, "lr": 0.05, "lr_scale_after": 0.0}}
    out = build(validate_manifest(raw), tmp_path / "art")
    test = out.report["metrics"]["test"]
    assert set(test["groups"]) == {"2", "4"} and 0 <= test["exact_match"] <= 1 and "token_f1" in test
    assert out.report["stages"]["decoder"]["graph_features"] is True
    pipeline = load(tmp_path / "art")
    story = "Anna is Ben's mother. Ben's sister is Clara. Who is Anna's daughter?"
    answer = pipeline.predict(story)[0]["generated"]
    assert answer and answer in story, "an extractor answers with a span of the text"
    for sample, text in zip(test_split := pipeline.data_split("test")[:6], pipeline.model.generate(test_split)):
        assert text in sample["text"]
    assert pipeline.model.generate(test_split[:1], max_new_tokens=1)[0].count(" ") == 0  # one token: one word
    pieces: list[str] = []
    pipeline.predict(story, on_text=pieces.append)
    assert "".join(pieces) == answer + "\n"
    with pytest.raises(InputError, match="unknown option 'num_beams'"):
        pipeline.model.generate(test_split[:1], num_beams=2)


def test_the_graph_lends_each_persons_state_to_the_tokens_of_their_name():
    from autoglm_sdk import Session

    session = Session.open(validate_manifest(manifest()))
    model = session.new_model()
    decoder = model.stage_objects["decoder"]
    story = {"text": "Anna is Ben's mother. Ben's sister is Clara. Who is Anna's daughter?", "answer": "Clara"}
    seen = {}

    def capture(module, inputs):
        seen["graph"] = inputs["reasoner"]
        return module(inputs)

    model.run_sink([story], capture)
    batch = decoder._encode([story], seen["graph"])
    owners = batch["owner"][0].tolist()
    names = seen["graph"].get_example(0).node_text  # one story: batched and local node indices agree
    named = {names[node] for node in owners if node >= 0}
    assert named == {"Anna", "Ben", "Clara"}
    offsets, first = batch["offsets"][0], batch["first"][0]
    for i, node in enumerate(owners):  # each lent token spells a piece of its person's name (BPE splits names)
        if node >= 0:
            piece = story["text"][offsets[i - first][0] : offsets[i - first][1]].strip()
            assert piece and piece in names[node], (piece, names[node])


def test_an_answer_that_is_not_in_the_text_is_a_one_line_data_error():
    from autoglm_sdk import Session

    session = Session.open(validate_manifest(manifest()))
    model = session.new_model()
    sample = dict(session.split("train")[0], answer="Zebedee")
    with pytest.raises(DataError, match="the answer 'Zebedee' is not in its sample's text") as caught:
        model([sample])
    assert "task = 'generate'" in caught.value.hint and "\n" not in caught.value.message


def test_extractive_qa_needs_an_extracting_decoder():
    raw = manifest()
    raw["decoder"] = {"plugin": "causal-lm", "inputs": ["reasoner", "data"]}
    with pytest.raises(ManifestError, match="decoder `causal-lm` cannot do task `extractive-qa`.*span-extractor"):
        validate_manifest(raw)


def test_cli_run_answers_with_a_span(tmp_path: Path):
    from helpers import run_cli

    from autoglm_sdk import build

    build(validate_manifest(manifest()), tmp_path / "qa")
    story = "Anna is Ben's mother. Ben's sister is Clara. Who is Anna's daughter?"
    result = run_cli("run", str(tmp_path / "qa"), "--text", story, "--max-new-tokens", "3")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["generated"] in story
