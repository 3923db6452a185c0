"""Stories as text: sentences, mentions, gold annotations, and the augmentations training reads them with.

Pure Python: the extractor (``extractor.py``) and what it reads (``extraction.py``) share it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable

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
#: openings that name a place, a year or a thing (a pretrained encoder's augmentation): capitalised words and
#: numbers are not all people
SETTING_OPENINGS = (
    "In {place},",
    "Back in {year},",
    "Before the move to {place},",
    "On a trip to {place},",
    "Back in {place} in {year},",
    "The winter {place} froze over,",
    "After {thing},",
    "During the floods of {year},",
)
#: asides put after a named or described person (augmentation, see :func:`with_asides`): where stories say where
#: people live, what they do and what they own, in the positions where people stand, with places, years and common
#: nouns that are not people
ASIDES = (
    ", who grew up in {place},",
    ", who moved to {place} in {year},",
    ", who drives a delivery van around {place},",
    ", who keeps bees behind the house,",
    ", who was born in {year},",
    ", who runs a small bakery in {place},",
    ", who never misses {thing},",
    ", who works at the harbour,",
    ", back from {place},",
    ", who repairs old radios,",
    ", who teaches piano in {place},",
    ", fresh off the train from {place},",
    ", who sells pottery at the Saturday market,",
    ", still proud of the vegetable garden,",
    ", who once rowed across {place},",
    ", a keen chess player,",
    ", who brought {food},",
    ", carrying a tray of {food},",
)
#: endings put before the full stop of a statement: places and things as subjects and objects of verbs too
ENDINGS = (
    ", in {place}",
    ", back in {year}",
    ", and {place} has not been the same since",
    ", just before leaving {place}",
    ", the year {place} won {thing}",
    ", which surprised nobody in {place}",
    ", long before the harbour was rebuilt",
    ", while the kettle boiled",
    ", as the photos from {place} show",
    " when the old mill in {place} still worked",
    ", over a plate of {food}",
    ", and there was {food} for everyone",
    " while the {food} cooled",
)
#: places for the slots above, apart from made-up ones (:func:`made_up_place`); a domain's own generator may
#: have its own, this list only has to be wide
PLACES = (
    "Lisbon",
    "Accra",
    "Osaka",
    "Valparaíso",
    "Winnipeg",
    "Dundee",
    "Izmir",
    "Lagos",
    "Hanoi",
    "Perth",
    "Bologna",
    "Tromsø",
    "Salvador",
    "Tijuana",
    "Kraków",
    "Mumbai",
    "Nairobi",
    "Busan",
    "Seville",
    "Quito",
    "the Algarve",
    "the Highlands",
    "Lake Geneva",
    "the Rhine",
    "Mount Kenya",
    "Sumatra",
    "Anatolia",
    "Ontario",
    "Texas",
    "Galicia",
    "Jutland",
    "Crimea",
    "Normandy",
    "Punjab",
    "Tasmania",
    "Yorkshire",
)
THINGS = (
    "the county fair",
    "the Marathon",
    "the Spring Festival",
    "Ramadan",
    "the World Cup",
    "Christmas",
    "the Jazz Festival",
    "the election",
    "Lent",
    "the regatta",
    "the harvest",
    "Diwali",
    "Eid",
    "Hanukkah",
    "Nowruz",
    "Lunar New Year",
    "Thanksgiving",
    "Carnival",
)
#: dishes of many kitchens for the {food} slot: stories about families are full of meals, and a dish's name
#: (capitalised or not, one word or several) is read like a made-up name by a reader that only knows people
FOODS = (
    "pierogi",
    "samosas",
    "jollof rice",
    "kimchi",
    "baklava",
    "tamales",
    "Black Forest cake",
    "borscht",
    "dumplings",
    "injera",
    "paella",
    "pho",
    "lasagne",
    "Yorkshire puddings",
    "biryani",
    "falafel",
    "empanadas",
    "Sachertorte",
    "mochi",
    "feijoada",
)
PLACE_SHAPES = (
    "Port {A}",
    "{A}ville",
    "Lake {A}",
    "San {A}",
    "{A}burg",
    "{A}ford",
    "Mount {A}",
    "{A} Bay",
    "{A}stad",
    "{A}",
)


def made_up_place(rng: Any) -> str:
    piece = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 3))))
    return rng.choice(PLACE_SHAPES).format(A=piece.capitalize())


def setting(template: str, rng: Any) -> str:
    """``template`` with its ``{place}``, ``{year}``, ``{thing}`` and ``{food}`` slots filled (a third of places
    made up)."""
    while "{place}" in template:
        place = made_up_place(rng) if rng.random() < 1 / 3 else rng.choice(PLACES)
        template = template.replace("{place}", place, 1)
    if "{year}" in template:
        template = template.replace("{year}", str(rng.randint(1850, 2024)))
    if "{food}" in template:
        template = template.replace("{food}", rng.choice(FOODS))
    return template.replace("{thing}", rng.choice(THINGS)) if "{thing}" in template else template


def inserted(text: str, mentions: list[dict[str, Any]], at: int, piece: str) -> str:
    """``text`` with ``piece`` put at ``at``; ``mentions`` that start there or later move along (in place)."""
    return replaced(text, mentions, at, at, piece)


def replaced(text: str, mentions: list[dict[str, Any]], start: int, end: int, piece: str) -> str:
    """``text`` with ``piece`` in place of ``text[start:end]`` (no mention's text); ``mentions`` that start at
    ``end`` or later move along (in place)."""
    shift = len(piece) - (end - start)
    for m in mentions:
        if m["start"] >= end:
            m["start"] += shift
            m["end"] += shift
    return text[:start] + piece + text[end:]


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
        text = replaced(text, mentions, b - 1, c, join)
        at = b - 1 + len(join)
        text = text[:at] + lowered + text[at + 1 :]
    return {**sample, "text": text, "mentions": mentions}


def with_openings(sample: Mapping[str, Any], rng: Any, share: float, settings: bool = False) -> dict[str, Any]:
    """``sample`` with an opening clause before about ``share`` of its statements, gold offsets moved along;
    with ``settings``, some of them name places, years or things (:data:`SETTING_OPENINGS`)."""
    openings = OPENINGS + SETTING_OPENINGS if settings else OPENINGS
    text, mentions = sample["text"], [dict(m) for m in sample.get("mentions", ())]
    starts = {m["start"]: m for m in mentions}
    for a, b in reversed(sentence_spans(text)):
        if text[a:b].endswith("?") or rng.random() >= share:
            continue
        first = starts.get(a)
        if first is None or first.get("kind") != "name":  # "Their father ..." -> "In fact, their father ..."
            text = text[:a] + text[a].lower() + text[a + 1 :]
        text = inserted(text, mentions, a, setting(rng.choice(openings), rng) + " ")
    return {**sample, "text": text, "mentions": mentions}


#: links that say the same between a person and what they are (augmentation): a stated fact must not hang on
#: its template's one verb ("Tess turned out to be Tom's mother's daughter-in-law" was read right, "Tess is Tom's
#: mother's daughter-in-law" wrong); a group is the links one of them may become
REWORDINGS = (
    (
        "is",
        "turned out to be",
        "happens to be",
        "is actually",
        "is in fact",
        "has always been",
        "is also",
        "was",
        "is, of course,",
        "is really",
        "remains",
        "became",
    ),
    ("are", "turned out to be", "happen to be", "are actually", "are in fact", "have always been", "were", "are also"),
)
_LINK_GROUPS = {w: g for g in REWORDINGS for w in g}
_LINK = re.compile(
    r"(?<= )(?:" + "|".join(sorted({re.escape(w) for g in REWORDINGS for w in g}, key=len, reverse=True)) + r")(?= )"
)


def with_rewordings(sample: Mapping[str, Any], rng: Any, share: float) -> dict[str, Any]:
    """``sample`` with the link (:data:`REWORDINGS`) of about ``share`` of its statements said another way, gold
    offsets moved along."""
    return _said_otherwise(sample, rng, share, _LINK, lambda link: [w for w in _LINK_GROUPS[link] if w != link])


def _said_otherwise(
    sample: Mapping[str, Any], rng: Any, share: float, pattern: re.Pattern, others: Callable[[str], list[str]]
) -> dict[str, Any]:
    """``sample`` with, in about ``share`` of its statements, one match of ``pattern`` outside every mention
    replaced by one of ``others(match)``, gold offsets moved along."""
    text, mentions = sample["text"], [dict(m) for m in sample.get("mentions", ())]
    for a, b in reversed(sentence_spans(text)):
        if text[b - 1] != "." or rng.random() >= share:
            continue
        found = [
            m
            for m in pattern.finditer(text, a, b)
            if not any(n["start"] < m.end() and m.start() < n["end"] for n in mentions)
        ]
        if found:
            match = rng.choice(found)
            text = replaced(text, mentions, match.start(), match.end(), rng.choice(others(match.group())))
    return {**sample, "text": text, "mentions": mentions}


#: verbs that take a person as object and state nothing about kinship, as (base, -s, past) forms (regular ones
#: only, so the past is also the passive's participle: "was helped by"). Why: the extractor read "Roman and Lucy
#: miss their sister" and "... visit their sister", the bank's two verbs there, but nothing in "... love their
#: sister" or "... helped their sister": it had learned the sentence, not its shape. Verbs that name or state a
#: relation ("called" in "a son called Tom", "married", "raised") are not here, so they are never swapped.
VERBS = (
    ("visit", "visits", "visited"),
    ("miss", "misses", "missed"),
    ("love", "loves", "loved"),
    ("admire", "admires", "admired"),
    ("help", "helps", "helped"),
    ("hug", "hugs", "hugged"),
    ("trust", "trusts", "trusted"),
    ("cherish", "cherishes", "cherished"),
    ("support", "supports", "supported"),
    ("remember", "remembers", "remembered"),
    ("tease", "teases", "teased"),
    ("spoil", "spoils", "spoiled"),
    ("worry about", "worries about", "worried about"),
    ("look up to", "looks up to", "looked up to"),
    ("write to", "writes to", "wrote to"),
    ("care for", "cares for", "cared for"),
    ("stay with", "stays with", "stayed with"),
    ("argue with", "argues with", "argued with"),
)
_VERB_FORMS = {form: (k, f) for k, forms in enumerate(VERBS) for f, form in enumerate(forms)}
_VERB = re.compile(r"\b(?:" + "|".join(sorted(map(re.escape, _VERB_FORMS), key=len, reverse=True)) + r")\b")


def with_verbs(sample: Mapping[str, Any], rng: Any, share: float) -> dict[str, Any]:
    """``sample`` with about ``share`` of its statements' verbs (:data:`VERBS`) swapped for another in the same
    form ("miss their sister" -> "cherish their sister"), gold offsets moved along."""

    def others(verb: str) -> list[str]:
        k, form = _VERB_FORMS[verb]
        return [forms[form] for j, forms in enumerate(VERBS) if j != k]

    return _said_otherwise(sample, rng, share, _VERB, others)


def with_asides(sample: Mapping[str, Any], rng: Any, share: float) -> dict[str, Any]:
    """``sample`` with an aside (:data:`ASIDES`) after a named person in about ``share`` of its statements, and an
    ending (:data:`ENDINGS`) on about ``share`` of them, gold offsets moved along: places, years and things stand
    next to people and where people stand, so that the reader learns they are not people."""
    text, mentions = sample["text"], [dict(m) for m in sample.get("mentions", ())]
    for a, b in reversed(sentence_spans(text)):
        if text[b - 1] != ".":  # statements only (a question ends with "?")
            continue
        # after a name or a description ("their sister, who sings in a choir,") that neither owns something
        # ("Ann's") nor ends the sentence
        named = ("name", "description")
        names = [m for m in mentions if a <= m["start"] and m["end"] < b - 1 and m.get("kind", "name") in named]
        names = [m for m in names if text[m["end"]] in " ," and not text[m["end"] :].startswith(" and ")]
        if names and rng.random() < share:
            at = rng.choice(names)["end"]
            aside = setting(rng.choice(ASIDES), rng)
            if text[at] == ",":  # "Tom's daughter, Ann, who ..., is": one comma stays
                aside = aside[:-1]
            text = inserted(text, mentions, at, aside)
            b += len(aside)
        if rng.random() < share:
            text = inserted(text, mentions, b - 1, setting(rng.choice(ENDINGS), rng))
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
        text = inserted(text, mentions, at, before + name + after)
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
    crossed: float = 0.0,
) -> dict[str, Any]:
    """``sample`` with about ``share`` of its named people renamed, every mention moved along: to a name
    other stories give people of the same ``attribute`` value (``pools``: value -> names), or to a made-up
    one (``made_up`` of the renamed), a surname after it kept; now and then every name in [brackets], as some
    story sets write them. A story where a name also occurs outside its mentions stays as it was."""
    text, mentions = sample["text"], [dict(m) for m in sample.get("mentions", ())]
    entities = [dict(e) for e in sample.get("entities", ())]
    names = [m for m in mentions if m.get("kind") == "name" and len(m["entities"]) == 1]
    anyone = sorted({n for pool in pools.values() for n in pool}) if crossed else []
    new: dict[int, str] = {}
    for e, entity in enumerate(entities):
        name = entity.get("name")
        own = sum(1 for m in names if m["entities"][0] == e)
        if not name or not own:
            continue
        if text.count(name) != own:
            return dict(sample)
        pool = pools.get(entity.get(attribute)) or [name]
        if crossed and rng.random() < crossed:  # any value's name: the words around a name must decide, not its look
            pool = anyone
        new[e] = name if rng.random() >= share else made_up_name(rng) if rng.random() < made_up else rng.choice(pool)
    if len(set(new.values())) < len(new):
        return dict(sample)  # two people would share a name
    before, after = ("[", "]") if rng.random() < share / 3 else ("", "")
    for m in sorted(names, key=lambda m: m["start"], reverse=True):
        if m["entities"][0] not in new:  # a name mention of someone the annotation leaves unnamed
            continue
        start, end = m["start"], m["end"]
        old = entities[m["entities"][0]]["name"]
        # a surname after the given name stays: "Rosa Delgado" -> "Maya Delgado"
        rest = text[start + len(old) : end] if text.startswith(old + " ", start) else ""
        replacement = before + new[m["entities"][0]] + rest + after
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


#: titles written before a name ("Mrs. Jones", "Dr Okafor"): part of no one's name
HONORIFICS = ("Mr", "Mrs", "Ms", "Mx", "Miss", "Dr", "Prof", "Rev", "Fr", "Capt", "Lt", "Sgt")
#: a period after these ends no sentence: titles (also "Col.", "Gen.", "Hon.", which are names too without the
#: period), places' "St" and "Mt", and one letter but "I" (an initial, "T. Brown"; "a.m.", "p.m.")
_NO_END = re.compile(rf"(?:\b(?:{'|'.join(HONORIFICS)}|Col|Gen|Hon|St|Mt)|(?<![\w'’])[A-HJ-Za-z])\.$")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text`` (at ., ! or ? and at line breaks, but not after a title or an
    initial), whitespace trimmed."""
    spans = []
    joined: list[tuple[int, int]] = []
    for match in SENTENCE.finditer(text):
        last = joined[-1] if joined else None  # the title or initial is at its end: look at its last characters
        if last and _NO_END.search(text, max(last[0], last[1] - 6), last[1]):
            joined[-1] = (last[0], match.end())
        else:
            joined.append(match.span())
    for start, end in joined:
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
    said: str | None = None  # the text as written, where ``text`` is it rewritten to be read (narration.py)

    @cached_property
    def _said_sentences(self) -> list[tuple[int, int]] | None:
        """The sentences of :attr:`said`, where it has as many as :attr:`text` (split once per story)."""
        written = sentence_spans(self.said) if self.said is not None else []
        return written if len(written) == len(self.sentences) else None

    def sentence(self, k: int) -> str:
        """Sentence ``k`` as the author wrote it (a rewrite keeps the sentences one for one)."""
        if self._said_sentences is not None:
            a, b = self._said_sentences[k]
            return self.said[a:b]
        return self.text[self.sentences[k][0] : self.sentences[k][1]]


CASES = ("lower", "capital opening a sentence", "capital")


def token_cases(story: Story) -> list[int]:
    """Each token's letter case as an index into :data:`CASES`: a capital inside a sentence marks a name, one
    opening a sentence marks nothing."""
    cases = []
    for k, (start, _) in enumerate(story.offsets):
        if not story.text[start : start + 1].isupper():
            cases.append(0)
        else:
            cases.append(1 if k == 0 or story.token_sentence[k] != story.token_sentence[k - 1] else 2)
    return cases


APOSTROPHES = ("'", "’")


def _token(story: Story, k: int) -> str:
    """The text of token ``k``, or "" past either end."""
    return story.text[story.offsets[k][0] : story.offsets[k][1]] if 0 <= k < len(story.ids) else ""


def _touching(story: Story, k: int) -> bool:
    """Whether token ``k`` starts where token ``k - 1`` ends (no space between)."""
    return k > 0 and story.offsets[k][0] == story.offsets[k - 1][1]


def after_possessive(story: Story, index: int) -> int:
    """The first token after token ``index - 1`` that is not a possessive ending ("'s", "'", "’s") in the same
    sentence: in "Omar's son-in-law" the word after Omar is "son", not the apostrophe."""
    end = len(story.ids)
    k = index
    if _token(story, k) in APOSTROPHES:
        k += 2 if _token(story, k + 1) == "s" else 1
    if k >= end or story.token_sentence[k] != story.token_sentence[min(index, end - 1)]:
        return min(index, end - 1)
    return k


def possessive_ending(story: Story, index: int) -> bool:
    """Whether token ``index`` is the apostrophe or the "s" of a possessive ending written against its word
    ("Tom's"): part of a mention, never one of its own."""
    if _token(story, index) in APOSTROPHES:
        return _touching(story, index)
    return (
        _token(story, index) == "s"
        and _token(story, index - 1) in APOSTROPHES
        and _touching(story, index)
        and _touching(story, index - 1)
    )


def whole_word(story: Story, index: int, step: int) -> tuple[int, int]:
    """The tokens ``[begin, end)`` of the word token ``index`` belongs to, grown from it in direction ``step``
    (+1 or -1) over the tokens written against it (no space between) that are letters, digits or a hyphen, within
    its sentence: "son-in-law" from "son" forward, from "law" backward. A word piece is a word's rest the same way.
    A token that is none of those (a comma, an apostrophe) is a word of its own."""

    def wordish(k: int) -> bool:
        a, b = story.offsets[k]
        piece = story.text[a:b]
        return piece == "-" or piece.isalnum()

    begin = end = index
    if wordish(index):
        k, sentence = index, story.token_sentence[index]
        while 0 <= k + step < len(story.ids) and story.token_sentence[k + step] == sentence and wordish(k + step):
            if not _touching(story, max(k, k + step)):  # a space between: another word
                break
            k += step
        begin, end = min(index, k), max(index, k)
    return begin, end + 1


def surface(story: Story, index: int) -> str:
    """The lower-cased text of mention ``index``."""
    m = story.mentions[index]
    return story.text[m.start : m.end].lower()


def gold_names(sample: Mapping[str, Any]) -> list[str]:
    """Each gold person's display, as :meth:`Extraction.display` writes it: its first name mention as written
    ("Rosa Delgado", where the story names her in full once), or its first description with the possessor before
    it."""
    text, mentions = sample["text"], sample.get("mentions", ())
    out = []
    for e, entity in enumerate(sample.get("entities", ())):
        mine = [m for m in mentions if m["entities"] == [e]]
        if entity.get("name"):
            called = [m for m in mine if m.get("kind") == "name"]
            out.append(text[called[0]["start"] : called[0]["end"]] if called else entity["name"])
            continue
        if not mine:
            out.append(f"person {e}")
            continue
        m = mine[0]
        previous = [p for p in mentions if p["end"] <= m["start"] and m["start"] - p["end"] <= 3]
        out.append(text[previous[-1]["start"] if previous else m["start"] : m["end"]])
    return out
