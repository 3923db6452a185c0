"""The kinship phrasing bank: families and their split partition, and the gold annotations of every story."""

from __future__ import annotations

import random

import pytest

from autoglm_graph import kinship_phrasings as kp
from autoglm_graph import kinship_vocab as kv
from autoglm_graph.kinship import HELD_OUT_SPLIT, KinshipDataSource, oracle
from autoglm_graph.specs import KinshipConfig, KinshipSplit
from autoglm_sdk.plugin import BuildContext

HOPS = [2, 3, 4, 5, 6]
BANK = KinshipConfig(
    train=KinshipSplit(hops=HOPS, stories=100),
    val=KinshipSplit(hops=HOPS, stories=50),
    test=KinshipSplit(hops=HOPS, stories=80),
    noise_facts=2,
    phrasings="bank",
    surnames=0.25,
)


@pytest.fixture(scope="module")
def dataset():
    return KinshipDataSource(BANK, BuildContext(seed=0)).load()


@pytest.fixture(scope="module")
def stories():
    """About 200 stories of 2-6 hops over every family, with the relation words each used."""
    source = KinshipDataSource(BANK.model_copy(update={"phrasing_split": False}), BuildContext(seed=1))
    (phrasing,) = set(source.phrasings().values())
    rng = random.Random("phrasings-test")
    out = []
    for i in range(200):
        words: list = []
        noise = source.config.model_copy(update={"noise_facts": i % 4})
        out.append((KinshipDataSource(noise).story(rng, HOPS[i % len(HOPS)], phrasing, words), words))
    return out


def test_bank_is_large_and_its_partition_disjoint():
    assert sum(len(f.templates) for f in kp.FAMILIES) >= 40
    assert len({t.text for f in kp.FAMILIES for t in f.templates}) == sum(len(f.templates) for f in kp.FAMILIES)
    parts = [set(kp.TRAIN_FAMILIES), set(kp.VAL_FAMILIES), set(kp.HELD_OUT_FAMILIES)]
    assert sum(map(len, parts)) == len(set().union(*parts)) == len(kp.FAMILIES) == len(kp.FAMILY)
    assert kp.CLASSIC in kp.TRAIN_FAMILIES and kp.FAMILIES[0].name == kp.CLASSIC
    questions = [set(q) for q in kp.QUESTIONS.values()]
    assert sum(map(len, questions)) == len(set().union(*questions))


def test_train_partition_is_varied_and_no_template_is_in_two_partitions():
    texts = {name: [t.text for f in kp.families(fams) for t in f.templates] for name, fams in kp.PARTITIONS.items()}
    assert len(texts["train"]) >= 90 and len(kp.TRAIN_FAMILIES) >= 19
    for name, own in texts.items():
        others = {t for other, theirs in texts.items() if other != name for t in theirs}
        assert not set(own) & others, name


def test_new_constructions_render_their_gold():
    gender = {1: kv.FEMALE, 2: kv.MALE, 3: kv.FEMALE}
    names = {1: "Karen", 2: "Mike", 3: "Anna"}
    nobody = lambda p, used, via: False  # noqa: E731

    def one(family: str, text: str):
        (template,) = [t for t in kp.FAMILY[family].templates if t.text == text]
        return template

    whose = one("relative-clause", "{S}, whose {v} is {O}, {filler}.")
    found = kp.bindings(whose, (2, "parent", 1), [], gender, nobody)
    rendered = {kp.render(whose, b, names, gender, random.Random(0), "sings in a choir").text: b.facts for b in found}
    assert rendered == {
        "Karen, whose son is Mike, sings in a choir.": ((2, "parent", 1),),
        "Mike, whose mother is Karen, sings in a choir.": ((1, "child", 2),),
    }

    both = one("two-facts", "{A}, {B}'s {v1}, and {C}, {B}'s {w2}, went to the match together.")
    (binding,) = [
        b for b in kp.bindings(both, (2, "parent", 1), [(1, "child", 3)], gender, nobody) if b.roles["A"] == 2
    ]
    out = kp.render(both, binding, names, gender, random.Random(0))
    assert out.text == "Mike, Karen's son, and Anna, Karen's daughter, went to the match together."
    assert out.facts == [(2, "parent", 1), (1, "child", 3)]
    assert [out.text[s:e] for s, e, _, kind in out.mentions] == ["Mike", "Karen", "Anna", "Karen"]

    nurse = one("described", "{O}'s {d} is a nurse, and {S.he} works nights.")
    (binding,) = kp.bindings(nurse, (2, "parent", 1), [], gender, lambda p, used, via: p == 1)
    out = kp.render(nurse, binding, names, gender, random.Random(0))
    assert out.text == "Mike's mother is a nurse, and she works nights." and out.facts == [(2, "parent", 1)]
    assert [(out.text[s:e], people, kind) for s, e, people, kind in out.mentions] == [
        ("Mike", (2,), "name"),
        ("mother", (1,), "description"),
        ("she", (1,), "pronoun"),
    ]

    pairs = one("pairs", "{O} and {S} are brother and sister.")
    (binding,) = kp.bindings(pairs, (3, "sibling", 2), [], gender, nobody)
    assert kp.render(pairs, binding, names, gender, random.Random(0)).text == "Mike and Anna are brother and sister."
    assert binding.facts == ((2, "sibling", 3),)  # Anna is Mike's sister
    assert kp.bindings(pairs, (1, "sibling", 3), [], gender, nobody) == []  # two sisters are not "brother and sister"


def test_each_split_uses_its_partition(dataset):
    allowed = {
        "train": (kp.TRAIN_FAMILIES, kp.QUESTIONS["train"]),
        "test": (kp.TRAIN_FAMILIES, kp.QUESTIONS["train"]),
        "val": (kp.VAL_FAMILIES, kp.QUESTIONS["val"]),
        HELD_OUT_SPLIT: (kp.HELD_OUT_FAMILIES, kp.QUESTIONS["held-out"]),
    }
    assert set(dataset.splits) == set(allowed)
    assert len(dataset.splits[HELD_OUT_SPLIT]) == BANK.test.stories
    for split, (families, questions) in allowed.items():
        used = set()
        for sample in dataset.splits[split]:
            assert sample["phrasings"] and set(sample["phrasings"]) <= set(families), split
            used |= set(sample["phrasings"])
            target, source = sample["query"]
            assert any(sample["text"].endswith(" " + q.format(T=target, S=source)) for q in questions)
        assert len(used) >= len(families) - 1, (split, used)  # nearly every family shows up


def test_without_phrasing_split_every_split_mixes_all_families():
    config = BANK.model_copy(update={"phrasing_split": False})
    data = KinshipDataSource(config, BuildContext(seed=0)).load()
    assert set(data.splits) == {"train", "val", "test"}
    used = {f for s in data.splits["train"] for f in s["phrasings"]}
    assert used & set(kp.VAL_FAMILIES) and used & set(kp.HELD_OUT_FAMILIES) and used & set(kp.TRAIN_FAMILIES)


def test_classic_default_keeps_three_splits_and_is_annotated():
    config = KinshipConfig(
        train=KinshipSplit(hops=[2, 3], stories=20),
        val=KinshipSplit(hops=[2], stories=5),
        test=KinshipSplit(hops=[4], stories=5),
    )
    data = KinshipDataSource(config, BuildContext(seed=0)).load()
    assert set(data.splits) == {"train", "val", "test"}
    for sample in data.splits["train"]:
        assert sample["phrasings"] == [kp.CLASSIC] and all(e["name"] for e in sample["entities"])
        assert {m["kind"] for m in sample["mentions"]} == {"name"}


def test_generation_is_deterministic_and_covers_the_new_split():
    a, b = (KinshipDataSource(BANK, BuildContext(seed=5)).load() for _ in range(2))
    assert a.fingerprint == b.fingerprint and a.splits == b.splits
    assert KinshipDataSource(BANK, BuildContext(seed=6)).load().fingerprint != a.fingerprint
    no_split = KinshipDataSource(BANK.model_copy(update={"phrasing_split": False}), BuildContext(seed=5)).load()
    assert no_split.fingerprint != a.fingerprint


def _chain_ids(sample: dict) -> list[tuple[int, str, int]]:
    """The gold chain as entity-id facts: a walk from the query's source to its target through stated facts
    whose types, genders and names match the chain's steps (two unnamed sisters can both fit a step)."""
    facts = {tuple(f) for f in sample["facts"]}
    facts |= {(t, kv.INVERSE[k], h) for h, k, t in facts}
    people = [(e["name"], e["gender"]) for e in sample["entities"]]
    target, source = sample["query_entities"]

    def walk(current: int, steps: list, seen: tuple) -> list | None:
        if not steps:
            return [] if current == target else None
        (name, word, _), kind = steps[0], kv.WORD_MEANING[steps[0][1]][0]
        for h, k, t in sorted(facts):
            if h == current and k == kind and t not in seen and people[t] == (name, kv.WORD_MEANING[word][1]):
                rest = walk(t, steps[1:], (*seen, t))
                if rest is not None:
                    return [(h, k, t), *rest]
        return None

    found = walk(source, list(sample["chain"]), (source,))
    assert found is not None, sample
    return found


def test_annotations_are_consistent(stories, dataset):
    samples = [s for s, _ in stories] + [s for split in dataset.splits.values() for s in split]
    seen_kinds, unnamed, surnamed = set(), 0, 0
    for sample in samples:
        text, entities, mentions = sample["text"], sample["entities"], sample["mentions"]
        assert oracle(sample) == sample["label"]
        assert set(sample) == {
            *("text", "label", "hops", "query", "chain", "entities", "mentions", "facts"),
            *("query_entities", "phrasings", "explanation", "summary"),
        }
        assert all(e["gender"] in (kv.FEMALE, kv.MALE) for e in entities)
        named = [e["name"] for e in entities if e["name"] is not None]
        assert len(named) == len(set(named))
        unnamed += len(entities) - len(named)
        end = -1
        mentioned, called = set(), set()
        for m in mentions:
            assert end <= m["start"] < m["end"] <= len(text), (m, text)
            end = m["end"]
            surface = text[m["start"] : m["end"]]
            assert surface == surface.strip() and not surface.endswith("'s")
            ids = m["entities"]
            assert ids == sorted(set(ids)) and all(0 <= i < len(entities) for i in ids)
            seen_kinds.add(m["kind"])
            if m["kind"] == "name":  # the first one may carry a surname: "Rosa Delgado", then "Rosa"
                given, _, surname = surface.partition(" ")
                assert len(ids) == 1 and given == entities[ids[0]]["name"]
                assert surname in ("", *kv.SURNAMES) and (not surname or ids[0] not in called)
                surnamed += bool(surname)
                called.add(ids[0])
            elif m["kind"] == "description":
                assert len(ids) == 1 and entities[ids[0]]["name"] is None
                assert kv.WORD_MEANING[surface][1] == entities[ids[0]]["gender"]
            else:
                assert m["kind"] == "pronoun" and surface.lower() in kp.PRONOUN_GENDER
            mentioned |= set(ids)
        assert mentioned == set(range(len(entities)))
        for name in named:  # every occurrence of a story person's name is a mention
            starts = {
                m["start"] for m in mentions if m["kind"] == "name" and entities[m["entities"][0]]["name"] == name
            }
            at = [
                i
                for i in range(len(text))
                if text.startswith(name, i) and not text[i + len(name)].isalpha() and not text[i - 1 : i].isalpha()
            ]
            assert set(at) == starts, (name, text)
        assert sample["facts"] and all(
            0 <= h < len(entities) and 0 <= t < len(entities) and h != t and k in kv.TYPES
            for h, k, t in sample["facts"]
        )
        pairs = [frozenset((h, t)) for h, _, t in sample["facts"]]
        assert len(pairs) == len(set(pairs))  # one fact per stated relation
        target, source = sample["query_entities"]
        assert [entities[target]["name"], entities[source]["name"]] == sample["query"]
        _chain_ids(sample)  # every chain fact is among the stated facts, in one direction or the other
        assert sample["phrasings"] == sorted(set(sample["phrasings"]))
    assert seen_kinds == {"name", "pronoun", "description"} and unnamed > 20 and surnamed > 20


def test_relation_words_agree_with_genders(stories):
    checked = 0
    for sample, words in stories:
        genders = [e["gender"] for e in sample["entities"]]
        for word, ids in words:
            if word in kv.WORD_MEANING:
                assert len(ids) == 1 and kv.WORD_MEANING[word][1] == genders[ids[0]], (word, sample["text"])
            else:
                gender = kp.PLURAL_MEANING[word][1]
                assert len(ids) > 1 and (gender is None or {genders[i] for i in ids} == {gender}), word
                assert gender is not None or len({genders[i] for i in ids}) == 2, word
            checked += 1
    assert checked > 300


def test_relation_words_name_stated_facts(stories):
    """A singular relation word describes someone in a stated fact of its type (either direction)."""
    for sample, words in stories:
        facts = {tuple(f) for f in sample["facts"]}
        facts |= {(t, kv.INVERSE[k], h) for h, k, t in facts}
        for word, ids in words:
            if word in kv.WORD_MEANING:
                kind = kv.WORD_MEANING[word][0]
                assert any(k == kind and t == ids[0] for _, k, t in facts), (word, sample["text"])


def test_pronouns_agree_with_gender_and_number(stories):
    counts = {kv.FEMALE: 0, kv.MALE: 0, "plural": 0}
    for sample, _ in stories:
        for m in sample["mentions"]:
            if m["kind"] != "pronoun":
                continue
            kind = kp.PRONOUN_GENDER[sample["text"][m["start"] : m["end"]].lower()]
            counts[kind] += 1
            if kind == "plural":
                assert len(m["entities"]) >= 2
            else:
                assert len(m["entities"]) == 1 and sample["entities"][m["entities"][0]]["gender"] == kind
    assert all(n > 10 for n in counts.values()), counts


def test_renderer_states_lists_and_two_facts_in_one_sentence():
    gender = {1: kv.FEMALE, 2: kv.MALE, 3: kv.FEMALE}
    names = {1: "Karen", 2: "Mike", 3: "Anna"}
    lists = kp.FAMILY["lists"].templates[0]  # "{M} has two {vs}, {X} and {Z}."
    (binding,) = kp.bindings(lists, (2, "parent", 1), [(1, "child", 3)], gender, lambda p, used, via: False)
    out = kp.render(lists, binding, names, gender, random.Random(0))
    assert out.text == "Karen has two children, Mike and Anna."
    assert out.facts == [(2, "parent", 1), (3, "parent", 1)]
    assert [(out.text[s:e], kind) for s, e, _, kind in out.mentions] == [
        ("Karen", "name"),
        ("Mike", "name"),
        ("Anna", "name"),
    ]
    unnamed = kp.FAMILY["unnamed-link"].templates[3]  # "... Their {d1} took them ..."
    (binding,) = kp.bindings(unnamed, (2, "parent", 1), [(1, "child", 3)], gender, lambda p, used, via: p == 1)
    out = kp.render(unnamed, binding, names, gender, random.Random(0))
    assert out.text == "Mike and Anna went to the fair. Their mother took them on the big wheel."
    assert [(out.text[s:e], people, kind) for s, e, people, kind in out.mentions][2:] == [
        ("Their", (2, 3), "pronoun"),
        ("mother", (1,), "description"),
        ("them", (2, 3), "pronoun"),
    ]
    assert kp.bindings(unnamed, (2, "parent", 1), [(1, "child", 3)], gender, lambda p, used, via: False) == []


def test_narrative_places_and_things_are_not_people():
    rendered = kp.fill("{place} was cold and grey when {X} arrived.", {"X": 3}, {3: "Ida"}, random.Random(0))
    assert [(rendered.text[a:b], people) for a, b, people, _ in rendered.mentions] == [("Ida", (3,))]
    assert rendered.text[0].isupper() and not rendered.facts  # "The Harvest Fair" would open a sentence too
    assert kp.people_slots("{X} and {Y} drove from {place} to {place} in one day.") == 2
    assert all(kp.people_slots(line) <= 2 for line in kp.NARRATIVE)
