"""``text-relations``: relational sentences -> a typed, directed SemanticGraph.

Every sentence is matched against the configured fact patterns ("{subj} is
{obj}'s {rel}") and query patterns ("How is {target} related to {source}?").
A fact "S is O's <word>" adds the edge O -> S with the word's type (read "S is
O's type") and, when the type has an inverse, S -> O with the inverse type.
People become nodes with features ``[female, male, gender unknown, is_source,
is_target]``; genders come from relation words, then pronouns, then the
name lexicon. Sentences no pattern matches are kept on the graph
(``unparsed``) and counted in the build report, never dropped silently.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from autoglm_graph.specs import TextRelationsConfig
from autoglm_sdk.plugin import BuildContext, InputError, SemanticGraph

# a capitalised name in any alphabet: Zoë, Ångström, O'Neil, Anne-Marie, McKay
_UPPER = "".join(re.escape(c) for c in map(chr, range(0x250)) if c.isupper() and c.isalpha())
_LETTER = r"[^\W\d_]"
NAME = rf"(?:[{_UPPER}]['’])?[{_UPPER}]{_LETTER}+(?:-[{_UPPER}]{_LETTER}+)?"
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
#: titles before a name: dropped so that "Mrs. Clara" is Clara (and female), not a person called Mrs
TITLES = {"mr": "male", "mrs": "female", "ms": "female", "miss": "female", "dr": None, "prof": None}
TITLE = re.compile(rf"\b(?P<title>{'|'.join(TITLES)})\.?\s+(?=(?P<name>{NAME}))", re.IGNORECASE)
GENDERS = ("female", "male")


@dataclass
class Parse:
    """What one text yielded."""

    people: list[str] = field(default_factory=list)
    gender: dict[str, str] = field(default_factory=dict)
    facts: list[tuple[str, str, str]] = field(default_factory=list)  # (subject, word, object)
    query: tuple[str | None, str] | None = None  # (target, source); no target when the question asks who it is
    unparsed: list[str] = field(default_factory=list)

    def person(self, name: str) -> None:
        if name not in self.people:
            self.people.append(name)


def _compile(template: str, words: list[str]) -> re.Pattern[str]:
    """A template with {subj} {obj} {target} {source} {rel} {pron} placeholders -> a regex."""
    relation = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    pattern = re.escape(template)
    for slot in ("subj", "obj", "target", "source"):
        pattern = pattern.replace(re.escape("{" + slot + "}"), f"(?P<{slot}>{NAME})")
    pattern = pattern.replace(re.escape("{rel}"), f"(?P<rel>{relation})")
    pattern = pattern.replace(re.escape("{pron}"), r"(?P<pron>his|her|their)")
    pattern = pattern.replace(re.escape("{any}"), r"(?:[\w'-]+ ){0,6}?")
    return re.compile(rf"(?<![\w'-]){pattern}")


class TextRelationsParser:
    """The parsing half of the builder, usable on its own (``autoglm run`` explanations, tests)."""

    def __init__(self, config: TextRelationsConfig) -> None:
        self.config = config
        words = list(config.relations)
        self.facts = [_compile(t, words) for t in config.fact_patterns]
        self.queries = [_compile(t, words) for t in config.query_patterns]
        self.lexicon = {n: "female" for n in config.female_names} | {n: "male" for n in config.male_names}

    def parse(self, text: str) -> Parse:
        out = Parse()
        pronoun_gender: dict[str, str] = {}
        titled = {m["name"]: TITLES[m["title"].lower()] for m in TITLE.finditer(text)}
        text = TITLE.sub("", text)
        for sentence in (s.strip() for s in SENTENCE_END.split(text.strip())):
            if not sentence:
                continue
            matched = False
            for pattern in self.queries:
                m = pattern.search(sentence)
                if m:
                    out.query = (m.groupdict().get("target"), m["source"])
                    matched = True
                    break
            if matched:
                continue
            spans: list[tuple[int, int]] = []
            for pattern in self.facts:
                for m in pattern.finditer(sentence):
                    if any(m.start() < end and start < m.end() for start, end in spans):
                        continue  # an earlier, more specific pattern already read this stretch
                    spans.append((m.start(), m.end()))
                    subject, obj, word = m["subj"], m["obj"], m["rel"].lower()
                    if subject == obj:
                        continue
                    out.facts.append((subject, word, obj))
                    out.person(obj)
                    out.person(subject)
                    gender = self.config.relations[word].gender
                    if gender:
                        out.gender.setdefault(subject, gender)
                    pron = m.groupdict().get("pron")
                    if pron in ("his", "her"):
                        pronoun_gender.setdefault(obj, "male" if pron == "his" else "female")
            if not spans:
                out.unparsed.append(sentence)
        for name, gender in [*titled.items(), *pronoun_gender.items()]:
            if gender and name in out.people:
                out.gender.setdefault(name, gender)
        if out.query:
            for name in out.query:
                if name:
                    out.person(name)
        for name in out.people:
            if name not in out.gender and name in self.lexicon:
                out.gender[name] = self.lexicon[name]
        return out


class TextRelationsBuilder(nn.Module):
    name = "text-relations"
    kind = "graph_builder"
    Config = TextRelationsConfig

    def __init__(self, config: TextRelationsConfig, ctx: BuildContext | None = None) -> None:
        super().__init__()
        self.config = config
        self.parser = TextRelationsParser(config)
        self.types = {t: i for i, t in enumerate(config.edge_types)}
        self.register_buffer("_anchor", torch.empty(0), persistent=False)  # follows .to(device)
        self.stats: Counter[str] = Counter()

    def forward(self, samples: list[dict[str, Any]]) -> SemanticGraph:
        graphs = []
        for i, sample in enumerate(samples):
            text = sample.get("text") if isinstance(sample, dict) else None
            if not isinstance(text, str) or not text.strip():
                raise InputError(f"text-relations: sample {i} has no `text` (a non-empty string)")
            graphs.append(self.graph(text))  # once per story and build: the spec says "cacheable"
        return SemanticGraph.collate(graphs).to(self._anchor.device)

    def graph(self, text: str) -> SemanticGraph:
        parse = self.parser.parse(text)
        self.stats["texts"] += 1
        self.stats["facts"] += len(parse.facts)
        self.stats["unparsed_sentences"] += len(parse.unparsed)
        if parse.query is None:
            self.stats["texts_without_question"] += 1
            raise InputError(
                f"text-relations: no question found in {text[:80]!r}",
                hint="end the story with a question such as 'How is Clara related to Anna?'",
            )
        index = {name: i for i, name in enumerate(parse.people)}
        edges, types = [], []
        for subject, word, obj in parse.facts:
            kind = self.config.relations[word].type
            edges.append((index[obj], index[subject]))
            types.append(self.types[kind])
            inverse = self.config.inverse.get(kind)
            if self.config.add_inverse_edges and inverse:
                edges.append((index[subject], index[obj]))
                types.append(self.types[inverse])
        n = len(parse.people)
        x = torch.zeros(n, 5)
        for name, i in index.items():
            gender = parse.gender.get(name)
            x[i, GENDERS.index(gender) if gender in GENDERS else 2] = 1.0
        target, source = parse.query
        x[index[source], 3] = 1.0
        if target is not None:  # "Who is Anna's granddaughter?" marks the source alone
            x[index[target], 4] = 1.0
        edge_index = torch.tensor(edges, dtype=torch.long).t().reshape(2, -1)
        return SemanticGraph(
            x=x,
            edge_index=edge_index,
            edge_type=torch.tensor(types, dtype=torch.long),
            is_source=x[:, 3].bool(),
            is_target=x[:, 4].bool(),
            node_text=list(parse.people),
            # what the text says about each person, for readers of the graph as text (causal-lm's {graph})
            node_attributes=[{"gender": parse.gender[p]} if parse.gender.get(p) in GENDERS[:2] else {} for p in index],
            unparsed=list(parse.unparsed),
        )

    def explain(self, graph: SemanticGraph) -> dict[str, Any]:
        """Nodes and typed edges of one (unbatched) graph, for ``autoglm run``."""
        names = list(graph.node_text)
        genders = ["female" if row[0] else "male" if row[1] else "unknown" for row in graph.x.tolist()]
        edges = [
            [names[s], self.config.edge_types[t], names[d]]
            for (s, d), t in zip(graph.edge_index.t().tolist(), graph.edge_type.tolist())
        ]
        return {
            "nodes": [{"name": n, "gender": g} for n, g in zip(names, genders)],
            "edges": edges,
            "unparsed": list(graph.unparsed),
        }

    def report(self) -> dict[str, int]:
        return dict(self.stats)
