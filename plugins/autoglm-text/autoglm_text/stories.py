"""Stories as text: sentences, mentions, gold annotations, and the augmentations training reads them with.

Pure Python: the extractor (``extractor.py``) and what it reads (``extraction.py``) share it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

KINDS = ("name", "pronoun", "plural", "description")
PLURAL_PRONOUNS = {"they", "them", "their", "theirs", "themselves"}
PRONOUNS = {"he", "she", "him", "her", "his", "hers", "himself", "herself", *PLURAL_PRONOUNS}
SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+[\"')\]]*|\n|$)")
PRONOUN_REACH = {"pronoun": 2, "plural": 1}  # sentences back a pronoun's antecedent may be
#: openings put before training sentences (augmentation): a fact stays the same fact whatever clause
#: introduces it, and the model should not learn that facts start sentences
OPENINGS = (
    "Apparently,",
    "As it happens,",
    "In fact,",
    "By the way,",
    "Interestingly,",
    "Of course,",
    "Last year,",
    "As far as anyone knows,",
    "Naturally,",
    "To be fair,",
    "Years ago,",
    "It is true that",
    "It turns out that",
    "Not surprisingly,",
    "Oddly enough,",
    "Back then,",
    "Sure enough,",
    "Everyone knows that",
    "As you may know,",
)


JOINS = (", and", "; then", ", while", ", and later", "; meanwhile,", ", but")


def with_joins(sample: Mapping[str, Any], rng: Any, share: float) -> dict[str, Any]:
    """``sample`` with about ``share`` of its neighbouring statements joined into one sentence ("A is B's mother,
    and C is B's sister."), gold offsets moved along: one sentence may state several facts, and two people of one
    sentence need not be related."""
    text, mentions = sample["text"], [dict(m) for m in sample.get("mentions", ())]
    starts = {m["start"]: m for m in mentions}
    spans = sentence_spans(text)
    for (a, b), (c, _) in reversed(list(zip(spans, spans[1:]))):
        if text[b - 1] != "." or text[c:].split("?")[0].count(".") == 0 or rng.random() >= share:
            continue  # only a statement followed by another statement (not by the question)
        first = starts.get(c)
        lowered = text[c] if first is not None and first.get("kind") == "name" else text[c].lower()
        join = rng.choice(JOINS) + " "
        text = text[: b - 1] + join + lowered + text[c + 1 :]
        shift = len(join) - (c - (b - 1))
        for m in mentions:
            if m["start"] >= c:
                m["start"] += shift
                m["end"] += shift
    return {**sample, "text": text, "mentions": mentions}


def with_openings(sample: Mapping[str, Any], rng: Any, share: float) -> dict[str, Any]:
    """``sample`` with an opening clause before about ``share`` of its statements, gold offsets moved along."""
    text, mentions = sample["text"], [dict(m) for m in sample.get("mentions", ())]
    starts = {m["start"]: m for m in mentions}
    for a, b in reversed(sentence_spans(text)):
        if text[a:b].endswith("?") or rng.random() >= share:
            continue
        first = starts.get(a)
        if first is None or first.get("kind") != "name":  # "Their father ..." -> "In fact, their father ..."
            text = text[:a] + text[a].lower() + text[a + 1 :]
        opening = rng.choice(OPENINGS) + " "
        text = text[:a] + opening + text[a:]
        for m in mentions:
            if m["start"] >= a:
                m["start"] += len(opening)
                m["end"] += len(opening)
    return {**sample, "text": text, "mentions": mentions}


#: clauses put at the end of training statements (augmentation), naming someone of the story the statement is not
#: about ({B}), sometimes with "them" for the statement's own people: the people of a sentence need not be party
#: to its facts, and stories people write are full of such bystanders ("She visits Frank with her mother Helen")
BYSTANDER_CLAUSES = (
    ", as {B} likes to remind everyone",
    ", which {B} already knew",
    ", or so {B} says",
    ", much to {B}'s surprise",
    ", according to {B}",
    ", and {B} was there to see it",
    ", and {B} thanked them for it",
    ", and {B} took a photo of them",
)


def with_bystanders(sample: Mapping[str, Any], rng: Any, share: float) -> dict[str, Any]:
    """``sample`` with a clause naming another person of the story (see :data:`BYSTANDER_CLAUSES`) at the end of
    about ``share`` of its statements, gold mentions added and moved along."""
    text, mentions = sample["text"], [dict(m) for m in sample.get("mentions", ())]
    entities = sample.get("entities", ())
    named = sorted({m["entities"][0] for m in mentions if m.get("kind") == "name" and len(m["entities"]) == 1})
    named = [e for e in named if e < len(entities) and entities[e].get("name")]
    related = [{int(h), int(t)} for h, _, t in sample.get("facts", ())]
    for a, b in reversed(sentence_spans(text)):
        if text[b - 1] != "." or rng.random() >= share:
            continue
        inside = sorted({e for m in mentions if a <= m["start"] < b for e in m["entities"]})
        # not someone the story relates to these people: a pair's gold class is the story's fact between them,
        # which this sentence would then seem to state
        others = [e for e in named if e not in inside and not any({e, x} in related for x in inside)]
        if not inside or not others:
            continue
        clause, bystander = rng.choice(BYSTANDER_CLAUSES), rng.choice(others)
        if "them" in clause and len(inside) < 2:
            continue
        name, at = entities[bystander]["name"], b - 1
        before, _, after = clause.partition("{B}")
        added = [
            {"start": at + len(before), "end": at + len(before) + len(name), "entities": [bystander], "kind": "name"}
        ]
        if "them" in after:
            them = at + len(before) + len(name) + after.index("them")
            added.append({"start": them, "end": them + 4, "entities": inside, "kind": "pronoun"})
        piece = before + name + after
        text = text[:at] + piece + text[at:]
        for m in mentions:
            if m["start"] >= at:
                m["start"] += len(piece)
                m["end"] += len(piece)
        mentions.extend(added)
    return {**sample, "text": text, "mentions": sorted(mentions, key=lambda m: m["start"])}


#: pieces of made-up names: a model that learned people from one list of names should still find a person
#: whose name it never saw (and names with apostrophes, hyphens, accents or two words)
SYLLABLES = ("ka", "lo", "mi", "ren", "da", "vo", "shi", "tu", "bel", "an", "or", "ze", "qui", "nam", "ja", "fe")
NAME_SHAPES = ("{a}{b}", "{a}{b}{c}", "{a}{b}-{c}{d}", "O'{a}{b}", "{a}{b} {c}{d}", "{a}ë{b}", "{a}{b}ø")


def made_up_name(rng: Any) -> str:
    shape = rng.choice(NAME_SHAPES)
    parts = {k: rng.choice(SYLLABLES) for k in "abcd"}
    return " ".join(w[0].upper() + w[1:] if w[0].isalpha() else w for w in shape.format(**parts).split(" "))


def with_names(
    sample: Mapping[str, Any],
    rng: Any,
    share: float,
    pools: Mapping[Any, list[str]],
    attribute: str,
    made_up: float = 0.3,
) -> dict[str, Any]:
    """``sample`` with about ``share`` of its named people renamed, every mention moved along: to a name
    other stories give people of the same ``attribute`` value (``pools``: value -> names), or to a made-up
    one (``made_up`` of the renamed); now and then every name in [brackets], as some story sets write them.
    A story where a name also occurs outside its mentions stays as it was."""
    text, mentions = sample["text"], [dict(m) for m in sample.get("mentions", ())]
    entities = [dict(e) for e in sample.get("entities", ())]
    names = [m for m in mentions if m.get("kind") == "name" and len(m["entities"]) == 1]
    new: dict[int, str] = {}
    for e, entity in enumerate(entities):
        name = entity.get("name")
        own = sum(1 for m in names if m["entities"][0] == e)
        if not name or not own:
            continue
        if text.count(name) != own:
            return dict(sample)
        pool = pools.get(entity.get(attribute)) or [name]
        new[e] = name if rng.random() >= share else made_up_name(rng) if rng.random() < made_up else rng.choice(pool)
    if len(set(new.values())) < len(new):
        return dict(sample)  # two people would share a name
    before, after = ("[", "]") if rng.random() < share / 3 else ("", "")
    for m in sorted(names, key=lambda m: m["start"], reverse=True):
        if m["entities"][0] not in new:  # a name mention of someone the annotation leaves unnamed
            continue
        start, end = m["start"], m["end"]
        replacement = before + new[m["entities"][0]] + after
        text = text[:start] + replacement + text[end:]
        for other in mentions:
            if other["start"] >= end:
                other["start"] += len(replacement) - (end - start)
                other["end"] += len(replacement) - (end - start)
        m["start"], m["end"] = start + len(before), start + len(replacement) - len(after)
    for e, name in new.items():
        entities[e]["name"] = name
    out = {**sample, "text": text, "mentions": mentions, "entities": entities}
    if sample.get("query_entities") and all(int(e) in new for e in sample["query_entities"]):
        out["query"] = [new[int(e)] for e in sample["query_entities"]]
    return out


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text`` (at ., ! or ? and at line breaks), whitespace trimmed."""
    spans = []
    for match in SENTENCE.finditer(text):
        start, end = match.span()
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append((start, end))
    return spans


@dataclass
class Mention:
    start: int  # characters
    end: int
    first: int  # tokens (story positions), end exclusive
    last: int
    sentence: int
    kind: int = 0
    entities: tuple[int, ...] = ()  # gold (training) or resolved (inference)


@dataclass
class Story:
    """One text, tokenized and cut into windows of whole sentences that fit the encoder."""

    text: str
    ids: list[int]
    offsets: list[tuple[int, int]]
    token_sentence: list[int]
    sentences: list[tuple[int, int]]
    windows: list[tuple[int, int]]  # token ranges
    mentions: list[Mention] = field(default_factory=list)
    gold: dict[str, Any] | None = None


def surface(story: Story, index: int) -> str:
    """The lower-cased text of mention ``index``."""
    m = story.mentions[index]
    return story.text[m.start : m.end].lower()


def gold_names(sample: Mapping[str, Any]) -> list[str]:
    """Each gold person's display: its name, or its first description with the possessor before it."""
    text, mentions = sample["text"], sample.get("mentions", ())
    out = []
    for e, entity in enumerate(sample.get("entities", ())):
        if entity.get("name"):
            out.append(entity["name"])
            continue
        mine = [m for m in mentions if m["entities"] == [e]]
        if not mine:
            out.append(f"person {e}")
            continue
        m = mine[0]
        previous = [p for p in mentions if p["end"] <= m["start"] and m["start"] - p["end"] <= 3]
        out.append(text[previous[-1]["start"] if previous else m["start"] : m["end"]])
    return out
