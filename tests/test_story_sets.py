"""The hand-written story sets of benchmarks/own_stories.py: every answer follows from the facts each story lists.

A wrong label or a fact written the wrong way round would make the benchmark blame the extractor for the set's
own mistake, so each story's answer is composed again here from its facts with the kinship rule table.
"""

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from own_stories import path, path_length  # noqa: E402

kv = pytest.importorskip("autoglm_graph.kinship_vocab")
compose_chain = pytest.importorskip("autoglm_graph.kinship").compose_chain

SETS = sorted((ROOT / "benchmarks" / "data").glob("*_stories*.jsonl"))


def stories(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def composed(story: dict) -> str | None:
    """The target's relation to the source along the story's facts (first arrival, as the reasoners read it)."""
    steps = path(story)
    if steps is None:
        return None
    person, kinds = story["query"][1].strip("[]").lower(), []
    for head, kind, tail in steps:  # each fact read from the person reached so far
        forward = head.strip("[]").lower() == person
        kinds.append(kind if forward else kv.INVERSE[kind])
        person = (tail if forward else head).strip("[]").lower()
    return compose_chain(kinds)


def test_there_are_story_sets():
    assert {p.name for p in SETS} >= {"own_stories.jsonl", "blind_stories.jsonl"}


@pytest.mark.parametrize("path", SETS, ids=lambda p: p.name)
def test_every_answer_follows_from_the_listed_facts(path):
    items = stories(path)
    assert len({s["id"] for s in items}) == len(items)
    for s in items:
        assert set(s) >= {"id", "text", "facts", "query", "label"}, s["id"]
        assert s["text"].rstrip().endswith("?"), s["id"]  # people ask other things on the way ("guess who?")
        for head, kind, tail in s["facts"]:
            assert kind in kv.TYPES, (s["id"], kind)
            for name in (head, tail):
                if re.fullmatch(r"\w+_of_[\w-]+", name):
                    continue  # an unnamed person ("their father"), named for the facts only: father_of_mateus
                assert re.search(rf"(?<!\w){re.escape(name.strip('[]'))}(?!\w)", s["text"]), (s["id"], name)
        kind = composed(s)
        assert kind not in (None, "self"), s["id"]
        assert s["label"] in {kv.word_for(kind, g) for g in (kv.FEMALE, kv.MALE)}, (s["id"], kind, s["label"])
        assert path_length(s) >= 1


def test_path_length_counts_the_facts_between_source_and_target():
    story = {"query": ["C", "A"], "facts": [["A", "child", "B"], ["B", "child", "C"], ["A", "spouse", "D"]]}
    assert path_length(story) == 2
    assert path_length({"query": ["Z", "A"], "facts": [["A", "child", "B"]]}) is None
