"""What the extractor read in one text: people (coreference clusters), facts with confidences, attributes, the
question's pair, the problems that make an answer meaningless, and the graph; and fact precision/recall/F1."""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

import torch

from autoglm_sdk.plugin import SemanticGraph, hops_between
from autoglm_text.stories import KINDS, Story, gold_names, surface

_OWNED_BY = re.compile(r"(?:'s?)? (?:[\w-]+ ){0,2}")  # between a possessor and its description
_APPOSED = re.compile(r",? \(?")  # between a description and the name beside it ("her sister Erin", "son, Tom")
_POSSESSED_WORDS = re.compile(r"['’]s ((?:[\w-]+ ?){1,3})")  # after a mention: the words it possesses
# between a person and the relative they are said to have, or to be: "Jack has a sister called Wendy", "Mila, the
# daughter of Anna", "Hannah is the mother-in-law of Carlos"
_HAS_A = re.compile(r" (?:has|had) an? ((?:[\w-]+ ){1,3})(?:called|named) ")
_THE_OF = re.compile(r",? (?:is |was )?the ((?:[\w-]+ ){1,3})of ")
# between a sentence's subject and a possessive that says what the subject is: "Maya is both Hugo's dear wife and
# ", "Naomi is Hannah's youngest "; not "She is survived by" (the survivor is Walter's son, not she)
_SUBJECT_IS = re.compile(r" (?:is|was) (?:both |also |now |still )?(?:[\w-]+['’]s (?:[\w-]+ ){0,2}?(?:and )?){0,3}")
_POSSESSIVE = re.compile(r"['’](?:s\b|(?=\s))")  # right after a mention: someone's
# between a name and a pronoun that is that name's, whoever the sentence is about: "Pablo and his wife", "Sipho,
# who dotes on his niece"
_AND = re.compile(r",? and |, who (?:[a-z]+ ){1,4}")
# around a description set beside the name before it ("Ngozi, their daughter, drove in", "Tom (her son) sang")
_APPOSITION_OPENS = re.compile(r"\s*(?:,|\(|[—–]|--?)\s*")
_APPOSITION_CLOSES = re.compile(r"\s*(?:[,;.!?)—–-]|who\b|$)")
# before a name that a description right after it names, with no comma between: "both call Maya their sister",
# "considers Tom her brother" (a verb of giving does not: "brought Maya her son" is the son brought to Maya)
_NAMING_VERB = re.compile(r"\b(?:call|calls|called|calling|consider|considers|considered|considering)\s+$", re.I)


class Extraction:
    """What the extractor read in one text: people (coreference clusters), facts, attributes, the query."""

    def __init__(self, extractor: Any, story: Story) -> None:
        self.x = extractor
        self.story = story
        self.owner: list[tuple[int, ...]] = [() for _ in story.mentions]  # mention -> people
        self.people: list[list[int]] = []  # person -> its (singular) mentions
        self.scores: dict[tuple[int, int], tuple[float, int, int]] = {}  # (head, tail) -> (p, class, sentence)
        # each people pair's relation probabilities, summed over the mention pairs that name it (differentiable
        # while learning from answers: the graph then carries every edge's type distribution, see soft)
        self.mass: dict[tuple[int, int], torch.Tensor] = {}
        self.soft = False
        self.kept: tuple[Any, ...] | None = None  # see RelationExtractor.extract_batch(keep_features=True)
        self.facts: list[tuple[int, int, int, float, int]] = []  # head, class, tail, confidence, sentence
        self.values: list[int | None] = []
        self.exists: list[float] = []  # each mention pair's probability of a fact, as relate read it
        self.query: tuple[int, int] | None = None
        self.problems: list[str] = []
        self.unlinked = False  # see _problems
        self.bridges: list[tuple[int, int, int, float, int]] = []  # facts _link_the_question added
        self.graph: SemanticGraph | None = None

    @classmethod
    def from_gold(cls, extractor: Any, story: Story) -> "Extraction":
        """The graph a story's gold annotation describes, built the way an extraction's is."""
        gold = story.gold or {}
        self = cls(extractor, story)
        count = len(gold.get("entities") or ())
        self.owner = [m.entities for m in story.mentions]
        self.people = [[k for k, m in enumerate(story.mentions) if m.entities == (e,)] for e in range(count)]
        values = gold.get("values", {})
        known = extractor.attribute_values
        self.values = [known.index(values[e]) if values.get(e) in known else None for e in range(count)]
        for head, relation, tail in gold.get("facts", ()):
            kind = extractor.type_of(relation)
            if kind is None:
                continue
            c, head, tail = extractor.classes.index(kind), int(head), int(tail)
            sentence = next((m.sentence for m in story.mentions if tail in m.entities), 0)
            key, cls_ = ((head, tail), c) if head < tail else ((tail, head), extractor.reverse[c])
            self.scores[key] = (1.0, cls_, sentence)
        query = gold.get("query_entities")
        self.query = (int(query[0]), int(query[1])) if query else None
        self.finish()
        return self

    def _new_person(self, mention: int) -> tuple[int, ...]:
        self.people.append([mention])
        return (len(self.people) - 1,)

    def resolve(
        self,
        probs: list[float],
        pairs: list[tuple[int, int]],
        values: torch.Tensor | None = None,
        related: Mapping[tuple[int, int], float] | None = None,
    ) -> None:
        """People from mentions: equal names merge; pronouns join their antecedents; descriptions may, and a name
        joins the unnamed description it is read as ("her son Adam"). With ``values`` (each mention's attribute
        probabilities), a singular pronoun does not join a person whose attribute it surely contradicts ("His
        sister" after "Noor ... she": not Noor's); with ``related`` (mention pairs of one sentence read as stating
        a fact), neither a pronoun nor a description joins a person it has a fact with there."""
        story, threshold = self.story, self.x.config.coref_threshold
        related = related or {}
        sure = self._sure_values(values)
        links: dict[int, list[tuple[float, int]]] = {}
        for p, (j, i) in zip(probs, pairs):
            links.setdefault(j, []).append((p, i))
        names: dict[str, tuple[int, ...]] = {}
        named_next = {  # a name in apposition right after a description: its surface, by its mention
            k: surface(story, k)
            for k in range(1, len(story.mentions))
            if KINDS[story.mentions[k].kind] == "name"
            and KINDS[story.mentions[k - 1].kind] == "description"
            and _APPOSED.fullmatch(story.text[story.mentions[k - 1].end : story.mentions[k].start])
        }
        mentions, text = story.mentions, story.text
        named_before = {  # a description in apposition after a name, its possessor between: "Ngozi, their
            k  # daughter, drove in" and "they call Ngozi their daughter" are Ngozi; not when a name follows it
            # ("Ngozi, their daughter Ada")
            for k in range(2, len(mentions))
            if KINDS[mentions[k].kind] == "description"
            and KINDS[mentions[k - 2].kind] == "name"
            and k + 1 not in named_next
            and (
                _APPOSITION_OPENS.fullmatch(text[mentions[k - 2].end : mentions[k - 1].start])
                or (
                    text[mentions[k - 2].end : mentions[k - 1].start] == " "
                    and _NAMING_VERB.search(text, max(0, mentions[k - 2].start - 16), mentions[k - 2].start)
                )
            )
            and _OWNED_BY.fullmatch(text[mentions[k - 1].end : mentions[k].start])
            and _APPOSITION_CLOSES.match(text, mentions[k].end)
        }
        coordinated = {  # "stay with Pablo and his wife", "his son Sipho, who dotes on his niece": Pablo's, Sipho's
            k
            for k in range(1, len(mentions))
            if KINDS[mentions[k].kind] == "pronoun"
            and KINDS[mentions[k - 1].kind] == "name"
            and text[mentions[k].start : mentions[k].end].lower() in ("his", "her")
            and _AND.fullmatch(text[mentions[k - 1].end : mentions[k].start])
        }
        for j, m in enumerate(story.mentions):
            kind = KINDS[m.kind]
            candidates = sorted((c for c in links.get(j, []) if self.owner[c[1]]), reverse=True)
            if kind in ("pronoun", "description") and related:  # "Ida's daughter-in-law" is not Ida
                candidates = self._not_kin(j, candidates, related, names)
            if kind == "name":
                said = surface(story, j)
                owner = names.get(said) or _same_name(said, names)
                if owner is None:  # a new name may be a description read before: "her son Adam", "Ida's son is Max"
                    described = [
                        i
                        for p, i in candidates
                        if p > threshold
                        and KINDS[story.mentions[i].kind] == "description"
                        and story.mentions[i].sentence == m.sentence
                        and not self._named(i)
                    ]
                    owner = self.owner[described[0]] if described else None
                owner = owner or self._new_person(j)
                names[said] = owner
            elif kind == "plural":
                owner = self._group([i for p, i in candidates if p > threshold])
            elif kind == "description" and j + 1 in named_next:  # "her sister Erin", "his son, Tom,": Erin, Tom
                owner = names.get(named_next[j + 1]) or self._new_person(j)
                names[named_next[j + 1]] = owner
            elif j in coordinated and self._agrees(sure, j, self.owner[j - 1]):
                owner = self.owner[j - 1]
            elif kind == "description" and j in named_before and self.owner[j - 2]:
                owner = self.owner[j - 2]
            elif kind == "description" and not (candidates := self._same_words(j, candidates, threshold)):
                owner = self._new_person(j)
            elif candidates and candidates[0][0] > threshold:
                value = sure[j] if kind == "pronoun" and sure else None
                if value is not None:
                    agreeing = [c for c in candidates if not self._contradicts(sure, value, self.owner[c[1]])]
                    candidates = agreeing if agreeing and agreeing[0][0] > threshold else candidates
                owner = self.owner[candidates[0][1]]
                if len(owner) > 1:  # a singular mention cannot be a group: the one of its people it agrees with
                    fits = [p for p in owner if value is not None and not self._contradicts(sure, value, (p,))]
                    owner = (fits[0],) if len(fits) == 1 else ()
            elif kind == "pronoun" and candidates:
                # unsure (most often a pronoun opening a sentence about someone of the last one: "Her husband,
                # Joost, ..."): the likeliest single person it does not contradict, if likely enough
                value = sure[j] if sure else None
                fits = [
                    c
                    for c in candidates
                    if len(self.owner[c[1]]) == 1
                    and (value is None or not self._contradicts(sure, value, self.owner[c[1]]))
                ]
                # a pronoun read as party to a fact stands for someone: its likeliest fit however unsure, rather
                # than losing the fact ("Zara is learning to sail. Chloe is a daughter of hers.")
                party = any(pair[0] == j for pair in related)
                floor = 0.0 if party else self.x.config.pronoun_floor
                owner = self.owner[fits[0][1]] if fits and fits[0][0] >= floor else ()
            else:
                owner = self._new_person(j) if kind == "description" else ()
            self.owner[j] = owner
            if len(owner) == 1 and j not in self.people[owner[0]]:
                self.people[owner[0]].append(j)

    def _group(self, antecedents: list[int]) -> tuple[int, ...]:
        """The people a plural mention stands for, from its likely ``antecedents``: those of the latest sentence
        that names two or more of them, else all. "They" is one group, said together: in "Will is Yara's husband.
        Ada and Rafael adore their sister", "their" is Ada and Rafael, although Yara, just before, was read at
        0.59. Taking all likely antecedents -> this, held-out answers on three builds (2026-12-07): 0.947 -> 0.963,
        0.929 -> 0.948, 0.922 -> 0.957; seen phrasings (seed 1) 0.916 -> 0.950."""
        by_sentence: dict[int, set[int]] = {}
        plain: dict[int, set[int]] = {}  # those named there not only as someone's ("Reza's son")
        for i in antecedents:
            m = self.story.mentions[i]
            by_sentence.setdefault(m.sentence, set()).update(self.owner[i])
            if not _POSSESSIVE.match(self.story.text, m.end):
                plain.setdefault(m.sentence, set()).update(self.owner[i])
        # "Reza's son Dariush and Dariush's sister Shirin adore their mother": Dariush and Shirin, not Reza
        by_sentence = {k: plain[k] if len(plain.get(k, ())) > 1 else people for k, people in by_sentence.items()}
        groups = [people for _, people in sorted(by_sentence.items(), reverse=True) if len(people) > 1]
        return tuple(sorted(groups[0] if groups else set().union(*by_sentence.values())))

    def _named(self, mention: int) -> bool:
        """Whether the people of ``mention`` already have a name (a person has one)."""
        return any(KINDS[self.story.mentions[k].kind] == "name" for p in self.owner[mention] for k in self.people[p])

    def _not_kin(
        self,
        j: int,
        candidates: list[tuple[float, int]],
        related: Mapping[tuple[int, int], float],
        names: dict[str, tuple[int, ...]],
    ) -> list[tuple[float, int]]:
        """``candidates`` less the people that pronoun ``j`` is read, more surely than it is read as them, as
        having a fact with: by a named mention of its sentence (later ones by their name)."""
        kin: dict[int, float] = {}
        for k, m in enumerate(self.story.mentions):
            if (j, k) in related and KINDS[m.kind] == "name":
                owner = self.owner[k] if k < j else names.get(surface(self.story, k), ())
                for person in owner if len(owner) == 1 else ():
                    kin[person] = max(kin.get(person, 0.0), related[j, k])
        same: dict[int, float] = {}
        for p, i in candidates:
            if len(self.owner[i]) == 1:
                same[self.owner[i][0]] = max(same.get(self.owner[i][0], 0.0), p)
        return [
            c
            for c in candidates
            if not (len(self.owner[c[1]]) == 1 and kin.get(self.owner[c[1]][0], 0) > same[self.owner[c[1]][0]])
        ]

    def _same_words(self, j: int, candidates: list[tuple[float, int]], threshold: float) -> list[tuple[float, int]]:
        """The antecedents a description may join: likely ones, and no description in other words. "Luca's
        daughter" after "Ruby's mom" is someone new, however alike the two read; "Tom's mother ... his mother" and
        "Anna ... Tom's wife" may be one person."""
        said, whose = surface(self.story, j), self._possessor(j)
        return [
            c
            for c in candidates
            if c[0] > threshold
            and (
                KINDS[self.story.mentions[c[1]].kind] != "description"
                or (surface(self.story, c[1]) == said and not (whose and self._possessor(c[1]) not in ((), whose)))
            )
        ]

    def _possessor(self, j: int) -> tuple[int, ...]:
        """The people whose relative description ``j`` names, when the mention just before it says ("Clara" of
        "Clara's hubby", "his" of "his late father"); else (). "Clara's hubby" is not "Olivia's hubby"."""
        return self.owner[j - 1] if owned(self.story, j) else ()

    @staticmethod
    def _sure_values(values: torch.Tensor | None, sure: float = 0.9) -> list[int | None]:
        """Each mention's attribute value where its probability is at least ``sure``, else None."""
        if values is None or not values.numel():
            return []
        best, index = values.max(-1)
        return [int(i) if float(p) >= sure else None for p, i in zip(best, index)]

    def _agrees(self, sure: list[int | None], j: int, owner: tuple[int, ...]) -> bool:
        """Whether ``owner`` is one person that mention ``j`` does not surely contradict."""
        value = sure[j] if sure else None
        return len(owner) == 1 and (value is None or not self._contradicts(sure, value, owner))

    def _contradicts(self, sure: list[int | None], value: int, owner: tuple[int, ...]) -> bool:
        """Whether ``owner`` is one person with a sure mention of another value than ``value``."""
        if len(owner) != 1:
            return False
        return any(sure[k] is not None and sure[k] != value for k in self.people[owner[0]])

    def relate(self, probs: torch.Tensor, pairs: list[tuple[int, int]]) -> None:
        """Each people pair's relation over the mention pairs that name it, in either order: a fact exists as
        surely as its surest mention pair says, and its type is the likeliest in their probabilities summed."""
        probs = self._both_ways(probs, pairs)
        # a fact exists where "none" is unlikely; its type is the likeliest of the others (an unfamiliar phrasing
        # may spread its mass over several types without any passing a threshold on its own). The type pools every
        # mention pair of the two people, each as much as it believes in a fact (a type's probability already
        # carries that): in "Clara introduced Julia as her mother-in-law", (Clara, Julia) and (her, Julia) both
        # speak. Held-out answers, read by the surest pair's type alone -> pooled, the same extractors (2026-12-06):
        # seed 0 0.924 -> 0.930, seed 2 0.933 -> 0.940
        exists = (1 - probs[:, 0]).tolist()
        self.exists = exists
        self.soft = probs.requires_grad
        flipped = probs[:, self.x.reverse_index]
        # learning from answers, the classifier types every edge: the answers teach it, words or not
        said = {} if self.soft else self._said_by_words()
        told: dict[tuple[int, int], int] = {}  # people pair -> the type its words say (word_pairs)
        for row, ((i, j), p) in enumerate(zip(pairs, exists)):
            sentence = self.story.mentions[i].sentence
            worded = said.get((i, j)) or (self.x.reverse[said[j, i]] if (j, i) in said else None)
            for a in self.owner[i]:
                for b in self.owner[j]:
                    if a == b:
                        continue
                    key, oriented = ((a, b), probs[row]) if a < b else ((b, a), flipped[row])
                    self.mass[key] = oriented if key not in self.mass else self.mass[key] + oriented
                    if p > self.scores.get(key, (0.0,))[0]:
                        self.scores[key] = (p, 0, sentence)
                    if worded is not None:
                        told[key] = worded if a < b else self.x.reverse[worded]
        for key, (p, _, sentence) in self.scores.items():
            c = told.get(key) or int(self.mass[key][1:].argmax()) + 1
            if key in told:  # an edge's type distribution says what its words say
                self.mass[key] = torch.nn.functional.one_hot(torch.tensor(c), len(self.x.classes)).to(probs)
            self.scores[key] = (p, c, sentence)

    def _said_by_words(self) -> dict[tuple[int, int], int]:
        """(possessor, relative) mention pair -> the relation class a word between them says the relative is to
        the possessor ("Ida's daughter-in-law", "Ida is Tom's aunt": parent_in_law, pibling), by the last of
        its words that training saw as always one type, where training saw all of them (see
        :func:`word_pairs`)."""
        words, out = self.x.word_types, {}
        for i, j, said in word_pairs(self.story) if words else ():
            # a word training never saw there may be the one that means it ("Tom's old friend Max": not "old")
            known = [words[w] for w in said if w in words and words[w]] if all(w in words for w in said) else []
            if known:
                out[i, j] = known[-1]
        return out

    def _both_ways(self, probs: torch.Tensor, pairs: list[tuple[int, int]]) -> torch.Tensor:
        """Each mention pair's probabilities averaged with its reverse pair's read the other way round: the
        classifier reads (a, b) and (b, a) separately, and a fact should not depend on which reading is surer."""
        row = {pair: k for k, pair in enumerate(pairs)}
        back = [row.get((j, i)) for i, j in pairs]
        alone = torch.tensor([[b is None] for b in back], device=probs.device)  # no reverse pair: as it is
        reverse = probs[[k if b is None else b for k, b in enumerate(back)]][:, self.x.reverse_index]
        return (probs + torch.where(alone, probs, reverse)) / 2

    def unrelated(self) -> "Extraction":
        """A copy as it was before :meth:`relate`: people, attributes and the query kept, no facts (learning
        from answers reads the same story's people every epoch while its relation probabilities change)."""
        out = copy.copy(self)
        out.people = [list(p) for p in self.people]
        out.values = list(self.values)
        out.scores, out.mass, out.soft, out.facts, out.graph = {}, {}, False, [], None
        return out

    def attributes(
        self, probs: torch.Tensor, told: torch.Tensor | None = None, pairs: list[tuple[int, int]] = ()
    ) -> None:
        """Each person's attribute value: the mean of their mentions' ``probs``, plus, for each mention pair read
        as a fact, what its words say of the tail (``told``, one row per pair). A name alone may suggest the
        wrong value; "his father, Rangi" says it."""
        scores = [probs[mentions].mean(0) if mentions else probs.new_zeros(probs.size(-1)) for mentions in self.people]
        threshold = self.x.config.relation_threshold
        for n, (_, j) in enumerate(pairs if told is not None else ()):
            if self.exists[n] >= threshold and len(self.owner[j]) == 1:
                scores[self.owner[j][0]] = scores[self.owner[j][0]] + told[n]
        values = []
        for score in scores:
            share = score / score.sum().clamp_min(1e-9)
            values.append(int(share.argmax()) if float(share.max()) >= 0.5 and float(score.sum()) > 0 else None)
        self.values = values

    def ask(self, mentions: list[int], probs: torch.Tensor) -> None:
        """The query's target and source: the question's mentions most likely in each role, different people."""
        options = [(k, self.owner[m][0]) for k, m in enumerate(mentions) if len(self.owner[m]) == 1]
        if len(options) < 2:
            return
        best = max(
            ((probs[a, 1] * probs[b, 2], pa, pb) for a, pa in options for b, pb in options if pa != pb),
            default=None,
            key=lambda t: float(t[0]),
        )
        if best is not None:
            self.query = (best[1], best[2])

    def finish(self) -> None:
        threshold = self.x.config.relation_threshold
        self.facts = [(a, c, b, p, s) for (a, b), (p, c, s) in sorted(self.scores.items()) if p >= threshold]
        if self.x.config.at_most:
            held: Counter[tuple[int, int]] = Counter()
            self.facts = sorted(
                (f for f in sorted(self.facts, key=lambda f: -f[3]) if self._fits(f, held)), key=lambda f: (f[0], f[2])
            )
        if not self.x.config.keep_cycles:
            self._drop_cycles()
        if self.query is not None and self.x.config.link_threshold is not None and not self._linked(*self.query):
            self._link_the_question(self.x.config.link_threshold)
        if len(self.values) != len(self.people):
            self.values = [None] * len(self.people)
        self.problems = self._problems()
        if self.query is None:  # the graph still marks a pair (a reasoner and a decoder need one); problems say why
            while len(self.people) < 2:
                self.people.append([])
                self.values.append(None)
            self.query = (len(self.people) - 1, 0)
        self.graph = self._graph()

    @property
    def limits(self) -> dict[int, int]:
        """Relation class -> how many relatives of that class one person may have (the config's ``at_most``)."""
        return {self.x.classes.index(t): n for t, n in self.x.config.at_most.items()}

    def _fits(self, fact: tuple[Any, ...], held: Counter[tuple[int, int]]) -> bool:
        """Whether ``fact`` leaves both its people within ``at_most``, given the relatives ``held`` so far (person,
        class -> count); it is counted when it fits. "b is a's c" gives a one more c and b one more reverse c."""
        a, c, b = fact[:3]
        ends, limits = ((a, c), (b, self.x.reverse[c])), self.limits
        if any(held[end] >= limits.get(end[1], len(self.people)) for end in ends):
            return False
        held.update(ends)
        return True

    def _type_distribution(self, key: tuple[int, int], reverse: bool) -> torch.Tensor:
        """One edge's probabilities over the graph's edge types: its people pair's pooled relation probabilities
        without "none", renormalised; read the other way round (each class as its reverse) when ``reverse``."""
        p = self.mass[key]
        if reverse:
            p = p[self.x.reverse_index]
        return p[1:] / p[1:].sum().clamp_min(1e-9)

    def _problems(self) -> list[str]:
        """What makes this story's answer meaningless, said in the answer rather than guessed around."""
        if self.query is None:
            return ["the question does not name two people (ask e.g. 'How is Clara related to Anna?')"]
        asked = self.x._question_sentence(self.story)
        out = []
        for person in self.query:
            if all(self.story.mentions[m].sentence == asked for m in self.people[person]):
                out.append(f"the question asks about {self.display(person)}, who is not in the story")
        named = not out  # both of the question's people are in the story
        if not out and not any(self.query[0] in (f[0], f[2]) for f in self.facts):
            out.append(f"no fact about {self.display(self.query[0])} was found in the story")
        elif not out and not self._linked(*self.query):
            target, source = (self.display(p) for p in self.query)
            out.append(f"no chain of facts read from the story links {target} to {source}")
        self.unlinked = named and bool(out)  # ... and what was read does not link them
        return out

    def _drop_cycles(self) -> None:
        """Keep the most confident facts that close no cycle (a maximum spanning forest, as Kruskal builds one).
        A reasoner that composes relations along paths needs one path between two people; a fact that closes a
        cycle adds none, and is most often a person standing by in a sentence misread as a party to its fact
        ("She often visits Frank with her mother Helen": Frank's mother Helen), which then gives a shorter, wrong
        path."""
        parts = Parts(len(self.people))
        kept = [f for f in sorted(self.facts, key=lambda f: -f[3]) if parts.join(f[0], f[2])]
        self.facts = sorted(kept, key=lambda f: (f[0], f[2]))

    def _link_the_question(self, floor: float) -> None:
        """Add the likeliest facts below the threshold that join separate parts of the graph (a maximum spanning
        forest, as Kruskal builds one) until the question's two people are linked; keep only those the link
        needs. Nothing is added when even these cannot link them."""
        parts, held = Parts(len(self.people)), Counter[tuple[int, int]]()
        for fact in self.facts:
            parts.join(fact[0], fact[2])
            self._fits(fact, held)
        asked = self.x._question_sentence(self.story)  # the question states no fact, however it reads
        # kept facts need no filtering out: their two people are already in one part, so none is added again
        candidates = sorted((p, a, c, b, s) for (a, b), (p, c, s) in self.scores.items() if p >= floor and s != asked)[
            ::-1
        ]
        added = []
        target, source = self.query
        for p, a, c, b, s in candidates:
            if parts.joined(target, source):
                break
            if not parts.joined(a, b) and self._fits((a, c, b), held):
                parts.join(a, b)
                added.append((a, c, b, p, s))
        if not parts.joined(target, source):
            return
        facts = self.facts + added
        for fact in reversed(added):  # the last added joined the question's people; earlier ones may be idle
            rest = [f for f in facts if f is not fact]
            if hops_between([(f[0], f[2]) for f in rest], target, source) is not None:
                facts = rest
        self.bridges = [f for f in added if f in facts]
        self.facts = sorted(facts, key=lambda f: (f[0], f[2]))

    def _linked(self, a: int, b: int) -> bool:
        """Whether the facts read connect people ``a`` and ``b`` (either direction: every fact has a reverse)."""
        return hops_between([(head, tail) for head, _, tail, _, _ in self.facts], a, b) is not None

    def display(self, person: int) -> str:
        story = self.story
        if not self.people[person]:
            return "(nobody)"
        mine = [story.mentions[k] for k in self.people[person]]
        # a name, else the first description ("her son Adam" is Adam; "their father ... he" is "their father")
        m = next((m for m in mine if KINDS[m.kind] == "name"), None)
        m = m or next((m for m in mine if KINDS[m.kind] == "description"), mine[0])
        if KINDS[m.kind] != "description":
            return story.text[m.start : m.end]
        # an unnamed person: its description with the possessor before it ("Anna's father", "their father")
        previous = [p for p in story.mentions if p.end <= m.start and m.start - p.end <= 3]
        start = previous[-1].start if previous else m.start
        return story.text[start : m.end]

    def _graph(self) -> SemanticGraph:
        x = self.x
        width = len(x.attribute_values) + 1 if x.attribute_values else 0
        n = len(self.people)
        features = torch.zeros(n, width + 2)
        for person, value in enumerate(self.values):
            if width:
                features[person, width - 1 if value is None else value] = 1.0
        if self.query is not None:
            target, source = self.query
            features[source, width] = 1.0
            features[target, width + 1] = 1.0
        edges, types, confidence, spans, stated, distributions = [], [], [], [], [], []
        sentences = self.story.sentences
        for head, c, tail, p, s in self.facts:
            text = self.story.sentence(s)
            for a, b, cls, first in ((head, tail, c, True), (tail, head, x.reverse[c], False)):
                if not first and not x.config.add_inverse_edges:
                    continue
                edges.append((a, b))
                types.append(cls - 1)
                confidence.append(p)
                spans.append(text)
                stated.append(first)
                if self.soft:
                    distributions.append(self._type_distribution((head, tail), not first))
        asked = x._question_sentence(self.story)
        unparsed = [
            self.story.sentence(k)
            for k in range(len(sentences))
            if k != asked and not any(f[4] == k for f in self.facts)
        ]
        extra = {}
        if distributions:
            extra["edge_type_probs"] = torch.stack(distributions)
        elif x.soft_types:  # every graph of a batch carries the distributions, one-hot where nothing was learned
            hard = torch.nn.functional.one_hot(torch.tensor(types, dtype=torch.long), len(x.graph_types))
            extra["edge_type_probs"] = hard.float().to(x._anchor.device)
        return SemanticGraph(
            **extra,
            x=features,
            edge_index=torch.tensor(edges, dtype=torch.long).t().reshape(2, -1),
            edge_type=torch.tensor(types, dtype=torch.long),
            edge_attr=torch.tensor(confidence, dtype=torch.float).reshape(-1, 1),
            is_source=features[:, width].bool(),
            is_target=features[:, width + 1].bool(),
            node_text=[self.display(p) for p in range(n)],
            edge_span=spans,
            edge_stated=stated,
            unparsed=unparsed,
            problems=list(self.problems),
        )


def owned(story: Story, j: int) -> bool:
    """Whether mention ``j`` is a description whose possessor is the mention just before it ("Clara" of "Clara's
    hubby", "his" of "his late father")."""
    if j == 0 or KINDS[story.mentions[j].kind] != "description":
        return False
    return bool(_OWNED_BY.fullmatch(story.text[story.mentions[j - 1].end : story.mentions[j].start]))


def word_pairs(story: Story) -> list[tuple[int, int, list[str]]]:
    """(possessor, relative, words) for each mention pair whose relation a word after the possessor may say:
    - a description after its possessor: "Ida's daughter-in-law", "his sister" (the description's word);
    - a person and the relative they have or are, one mention after the other: "Jack has a sister called
      Wendy", "Mila, the daughter of Anna," (Anna's), "Hannah is the mother-in-law of Carlos" (Carlos's);
    - a possessive followed by words that are no mention (up to three; training finds the word that means it,
      see RelationExtractor._learn_word_types), with the relative the words name: the mention right after
      them ("Erik's beloved mother Dora", "Ida's son is Max"), else the subject of a sentence that says "X is"
      or "X was" just before the possessive, or before others ("Maya is both Hugo's beloved daughter-in-law
      and Mira's mama", "Laura is Isabel's hubby's daughter": the hubby's, not Isabel's)."""
    mentions, text, out = story.mentions, story.text, []
    for j in range(1, len(mentions)):
        if owned(story, j):
            out.append((j - 1, j, [surface(story, j)]))
        between = text[mentions[j - 1].end : mentions[j].start]
        if has := _HAS_A.fullmatch(between):  # "Jack has a sister called Wendy"
            out.append((j - 1, j, has[1].lower().split()))
        elif (of := _THE_OF.fullmatch(between)) and not _POSSESSIVE.match(text, mentions[j].end):
            out.append((j, j - 1, of[1].lower().split()))  # "Mila, the daughter of Anna": not "of Anna's son"
    for i, m in enumerate(mentions):
        after = _POSSESSED_WORDS.match(text, m.end)
        if after is None or (i + 1 < len(mentions) and owned(story, i + 1)):
            continue
        cut = i + 1 < len(mentions) and mentions[i + 1].start <= after.end(1)  # the words run into a mention
        said = text[after.start(1) : mentions[i + 1].start if cut else after.end(1)].lower().split()
        if cut:
            out.append((i, i + 1, said))
            continue
        subject = next(k for k, n in enumerate(mentions) if n.sentence == m.sentence)
        if subject < i - (1 if owned(story, i) else 0) and _SUBJECT_IS.fullmatch(text, mentions[subject].end, m.start):
            out.append((i, subject, said))
    return out


def _same_name(said: str, names: Mapping[str, tuple[int, ...]]) -> tuple[int, ...] | None:
    """The person one earlier name stands for when ``said`` is that name's first or last word, or that name is
    ``said``'s ("Rosa Delgado ... Rosa", "Desmond Clarke ... Clarke", "Rosa ... Rosa Delgado"); None when no
    name, or several people's, fit ("Ann Smith and Bob Smith ... Smith")."""
    words = said.split()
    ends = lambda name: {name.split()[0], name.split()[-1]}  # noqa: E731
    owners = {
        owner
        for name, owner in names.items()
        if name != said and ((len(words) == 1 and said in ends(name)) or (" " not in name and name in ends(said)))
    }
    return owners.pop() if len(owners) == 1 else None


class Parts:
    """Which people the facts so far join (union-find)."""

    def __init__(self, people: int) -> None:
        self.part = list(range(people))

    def find(self, i: int) -> int:
        while self.part[i] != i:
            self.part[i] = self.part[self.part[i]]
            i = self.part[i]
        return i

    def joined(self, a: int, b: int) -> bool:
        return self.find(a) == self.find(b)

    def join(self, a: int, b: int) -> bool:
        """Join the parts of ``a`` and ``b``; False when they were joined already."""
        a, b = self.find(a), self.find(b)
        self.part[a] = b
        return a != b


def fact_scores(extractor: Any, samples: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Precision, recall and F1 of extracted facts against gold ``facts``, overall and per relation type.

    A fact is matched by the people's names (an unnamed person by the gold description's surface), either
    direction through the inverse; gold facts about unnamed people count by their first mention's surface."""
    per: dict[str, list[int]] = {}
    for sample, extraction in zip(samples, extractor.extract_batch([s["text"] for s in samples])):
        predicted = set()
        for head, c, tail, _, _ in extraction.facts:
            predicted.add(_canonical(extractor, extraction.display(head), c, extraction.display(tail)))
        gold = set()
        names = gold_names(sample)
        for head, relation, tail in sample.get("facts", ()):
            kind = extractor.type_of(relation)
            if kind is not None:
                gold.add(_canonical(extractor, names[int(head)], extractor.classes.index(kind), names[int(tail)]))
        for fact in predicted | gold:
            row = per.setdefault(extractor.classes[fact[1]], [0, 0, 0])  # true positives, predicted, gold
            row[0] += fact in predicted and fact in gold
            row[1] += fact in predicted
            row[2] += fact in gold
    total = [sum(r[k] for r in per.values()) for k in range(3)]

    def prf(tp: int, pred: int, gold: int) -> dict[str, float]:
        p = tp / pred if pred else 0.0
        r = tp / gold if gold else 0.0
        return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "support": gold}

    return {**prf(*total), "per_relation": {k: prf(*v) for k, v in sorted(per.items())}, "stories": len(samples)}


def _canonical(extractor: Any, head: str, c: int, tail: str) -> tuple[str, int, str]:
    head, tail = head.lower(), tail.lower()
    reverse = extractor.reverse[c]
    return (head, c, tail) if (head, c) <= (tail, reverse) else (tail, reverse, head)
