"""The learned extractor is not about families: an org chart (managers, reports, colleagues), written as a user
would write their own annotated stories (jsonl with facts), trains and answers through the same builder and
reasoner, with no kinship code and the relation inventory from the manifest alone."""

from __future__ import annotations

import json
import random

NAMES = (
    "Alice Bruno Chen Dara Emeka Farah Goran Hana Ivo Jun Kofi Lena Mateo Noor Olu Priya Quinn Rosa Sven Tariq".split()
)
#: "tail is head's relation" for each phrasing's (first name, second name)
PHRASINGS = {
    "manager": ["{a} reports to {b}.", "{b} manages {a}.", "{b} is {a}'s manager.", "{a} works for {b}."],
    "report": ["{b} reports to {a}.", "{a} manages {b}.", "{b} is on {a}'s team."],
    "colleague": ["{a} and {b} work together.", "{b} is a colleague of {a}.", "{a} shares an office with {b}."],
}
INVERSE = {"manager": "report", "report": "manager", "colleague": "colleague"}
#: what the second hop makes of the first (this test's own small rule table)
COMPOSE = {
    ("manager", "manager"): "skip-level manager",
    ("report", "report"): "skip-level report",
    ("manager", "colleague"): "manager's colleague",
    ("colleague", "manager"): "manager",
    ("report", "colleague"): "report",
    ("colleague", "report"): "colleague's report",
}
QUESTIONS = ["Who is {t} to {s}?", "How is {t} related to {s} at work?"]


def story(rng: random.Random) -> dict:
    (first, second), label = rng.choice(sorted(COMPOSE.items()))
    a, b, c = rng.sample(NAMES, 3)
    sentences, facts = [], []
    for kind, (head, tail) in ((first, (a, b)), (second, (b, c))):
        if rng.random() < 0.5:  # stated from the other side: the inverse relation
            kind, head, tail = INVERSE[kind], tail, head
        sentences.append(rng.choice(PHRASINGS[kind]).format(a=head, b=tail))
        facts.append([head, kind, tail])
    rng.shuffle(sentences)
    text = " ".join(sentences) + " " + rng.choice(QUESTIONS).format(t=c, s=a)
    return {"text": text, "label": label, "facts": facts, "query": [c, a]}


def test_an_org_chart_trains_and_answers_through_the_same_builder(tmp_path):
    import torch

    from autoglm_sdk import build, load, validate_manifest

    rng = random.Random(0)
    path = tmp_path / "org.jsonl"
    lines = [
        {**story(rng), "split": split} for split, n in (("train", 500), ("val", 60), ("test", 60)) for _ in range(n)
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    manifest = {
        "pipeline": {"name": "org", "seed": 0},
        "data": {"plugin": "jsonl", "path": str(path)},
        "graph_builder": {
            "plugin": "relation-extractor",
            "pretrained": None,
            "hidden_size": 48,
            "num_layers": 1,
            "num_heads": 2,
            "head_size": 48,
            "vocab_size": 400,
            "edge_types": ["manager", "report", "colleague"],
            "inverse": INVERSE,
            "epochs": 8,
            "lr": 3e-3,
        },
        "reasoner": {"plugin": "path-composer", "states": 12},
        "decoder": {"plugin": "classifier", "hidden": 32},
        # the restarts answer together: on seed 0 the one validation chose answered 48 of 60 from graphs read
        # without a mistake (facts F1 1.0, every question's people right), the three together 60
        "train": {"epochs": 25, "lr": 0.05, "batch_size": 32, "restarts": 3, "keep": "ensemble"},
    }
    result = build(validate_manifest(manifest), tmp_path / "art")
    facts = result.report["evaluations"]["relation-extractor"]["figures"]["facts"]["test"]
    assert facts["f1"] > 0.9, facts
    assert set(facts["per_relation"]) <= {"manager", "report", "colleague"}
    assert result.report["metrics"]["test"]["accuracy"] > 0.8, result.report["metrics"]["test"]
    # stories with answers and no facts: the extractor starts from that build's and the answers teach its
    # relation classifier (learn_from_answers), everything before it staying as it was
    answers_only = tmp_path / "answers.jsonl"
    rng = random.Random(1)
    stripped = [
        {k: v for k, v in story(rng).items() if k not in ("facts", "query")} | {"split": split}
        for split, n in (("train", 300), ("val", 60), ("test", 60))
        for _ in range(n)
    ]
    answers_only.write_text("\n".join(json.dumps(line) for line in stripped) + "\n")
    logged = []
    manifest["data"]["path"] = str(answers_only)
    manifest["graph_builder"] |= {"init_from": str(tmp_path / "art"), "learn_from_answers": True}
    tuned = build(validate_manifest(manifest), tmp_path / "tuned", log=logged.append)
    assert any("keeps what it had learned" in line for line in logged)
    assert tuned.report["metrics"]["test"]["accuracy"] > 0.8, tuned.report["metrics"]["test"]
    before, after = (load(tmp_path / name).model.stages["graph_builder"].state_dict() for name in ("art", "tuned"))
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"relation"}, changed  # the answers taught the relation classifier and nothing else
