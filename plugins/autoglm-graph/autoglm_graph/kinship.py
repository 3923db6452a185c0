"""``kinship``: seeded stories about families, asking how two people are related.

Every story is grounded in a sampled family tree: a chain of k stated facts
walks from the query's source to its target through distinct people of one
tree, and each step's relation is read off the tree. The answer is the chain
composed with :func:`~autoglm_graph.kinship_vocab.compose`; the generator
checks that it agrees with the tree and keeps only chains whose every prefix
composes to a defined relation (ambiguous compositions are excluded, not
guessed). Grounding in a tree avoids inventing a person who must already be in
the story (a daughter's father's wife is the speaker herself).

Facts are phrased with :mod:`~autoglm_graph.kinship_phrasings`. With
``phrasings = "classic"`` (the default) only the original five templates and two
questions are used, all of which ``text-relations`` reads, and the stories are
the same as before the bank existed. With ``"bank"`` every family can be used
(pronouns, relatives described but never named, lists, two facts in one
sentence, filler sentences), and with ``phrasing_split`` the families are
partitioned: train and test use the training families, val the validation
families, and a fourth split, ``held-out-phrasing``, only the held-out ones.

Besides ``text``, ``label``, ``hops``, ``query`` ([target, source] names) and
``chain`` ([relative, word, anchor] per gold step; a name is None for a person
the story never names), every sample carries gold annotations for learned
text-to-graph extractors:

* ``entities``: ``{"name": str | None, "gender": "female" | "male"}``, numbered by first mention;
* ``mentions``: ``{"start", "end", "entities", "kind"}`` with ``text[start:end]`` the surface
  (a name without its "'s", a pronoun, or the relation word describing an unnamed person),
  ``kind`` one of name, pronoun, description; sorted, never overlapping;
* ``facts``: ``[head, type, tail]`` entity ids, "tail is head's type", one per stated fact;
* ``query_entities``: ``[target, source]`` entity ids;
* ``phrasings``: the sorted names of the families the fact sentences came from.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Any

from autoglm_graph import kinship_phrasings as kp
from autoglm_graph import kinship_vocab as kv
from autoglm_graph.specs import KinshipConfig
from autoglm_sdk.plugin import BuildContext, DataError, Dataset, Port, TaskSpec

# The original five fact templates and two questions: the "classic" family, which
# text-relations reads in full. Richer phrasings live in kinship_phrasings.
FACT_TEMPLATES = tuple(t.text for t in kp.FAMILY[kp.CLASSIC].templates)
FILLERS = kp.FILLERS
QUERY_TEMPLATES = kp.CLASSIC_QUESTIONS
HELD_OUT_SPLIT = "held-out-phrasing"


@dataclass(frozen=True)
class Phrasing:
    """What one split's stories may say: fact families, questions, and whether filler sentences are added and
    relation words vary (everyday words, adjectives: the bank's stories; never the classic ones)."""

    families: tuple[kp.Family, ...]
    questions: tuple[str, ...]
    narrative: bool = False

    @property
    def streams(self) -> bool:
        """Only one-fact templates that name everyone: each fact can be phrased as soon as it is drawn."""
        return all(t.arity == 1 and not t.unnamed for f in self.families for t in f.templates)


CLASSIC_PHRASING = Phrasing(kp.families([kp.CLASSIC]), kp.CLASSIC_QUESTIONS)


@dataclass
class Person:
    id: int
    gender: str
    parents: tuple[int, int] | None = None
    spouse: int | None = None
    children: list[int] = field(default_factory=list)


class FamilyTree:
    """Couples with children over a few generations; spouses marry in from outside."""

    def __init__(self, rng: random.Random, generations: int, max_children: int) -> None:
        self.people: list[Person] = []
        root = self._couple(rng)
        frontier = [root]
        for generation in range(generations - 1):
            next_frontier = []
            for a, b in frontier:
                for _ in range(rng.randint(1, max_children)):
                    child = self._add(rng.choice((kv.FEMALE, kv.MALE)), parents=(a, b))
                    self.people[a].children.append(child.id)
                    self.people[b].children.append(child.id)
                    if generation < generations - 2 and rng.random() < 0.85:
                        spouse = self._add(kv.MALE if child.gender == kv.FEMALE else kv.FEMALE)
                        child.spouse, spouse.spouse = spouse.id, child.id
                        next_frontier.append((child.id, spouse.id))
            frontier = next_frontier

    def _add(self, gender: str, parents: tuple[int, int] | None = None) -> Person:
        person = Person(len(self.people), gender, parents)
        self.people.append(person)
        return person

    def _couple(self, rng: random.Random) -> tuple[int, int]:
        a, b = self._add(kv.FEMALE), self._add(kv.MALE)
        a.spouse, b.spouse = b.id, a.id
        return a.id, b.id

    def surnames(self, rng: random.Random) -> dict[int, str]:
        """A family name for everyone: a father's passes to his children, a wife who married in takes her
        husband's half the time, everyone else (the first couple, husbands who married in) has one of their own."""
        pool = list(kv.SURNAMES)
        rng.shuffle(pool)
        named: dict[int, str] = {}

        def of(x: int) -> str:
            if x not in named:
                person = self.people[x]
                if person.parents:
                    named[x] = of(next(p for p in person.parents if self.people[p].gender == kv.MALE))
                elif person.gender == kv.FEMALE and person.spouse is not None and rng.random() < 0.5:
                    named[x] = of(person.spouse)
                else:
                    named[x] = pool.pop() if pool else rng.choice(kv.SURNAMES)
            return named[x]

        return {p.id: of(p.id) for p in self.people}

    # -- relations read off the tree ------------------------------------------------

    def parents(self, x: int) -> set[int]:
        p = self.people[x].parents
        return set(p) if p else set()

    def children(self, x: int) -> set[int]:
        return set(self.people[x].children)

    def spouse(self, x: int) -> set[int]:
        s = self.people[x].spouse
        return {s} if s is not None else set()

    def siblings(self, x: int) -> set[int]:
        p = self.people[x].parents
        return {c for c in self.people[p[0]].children if c != x} if p else set()

    def relatives(self, x: int) -> dict[int, str]:
        """Everyone with a vocabulary relation to ``x``: person -> type ("y is x's type")."""
        union = lambda sets: set().union(*sets) if sets else set()  # noqa: E731
        kinds = {
            "parent": self.parents(x),
            "child": self.children(x),
            "sibling": self.siblings(x),
            "spouse": self.spouse(x),
            "grandparent": union([self.parents(p) for p in self.parents(x)]),
            "grandchild": union([self.children(c) for c in self.children(x)]),
            # an uncle's wife is an aunt too
            "pibling": union(
                [self.siblings(p) | union([self.spouse(s) for s in self.siblings(p)]) for p in self.parents(x)]
            ),
            # and a spouse's sibling's child is a niece or nephew too (the other side of an uncle's wife)
            "nibling": union(
                [self.children(s) for s in self.siblings(x) | union([self.siblings(p) for p in self.spouse(x)])]
            ),
            "parent_in_law": union([self.parents(s) for s in self.spouse(x)]),
            "child_in_law": union([self.spouse(c) for c in self.children(x)]),
            "sibling_in_law": union([self.siblings(s) for s in self.spouse(x)])
            | union([self.spouse(s) for s in self.siblings(x)]),
        }
        found: dict[int, str] = {}
        ambiguous: set[int] = set()
        for kind, people in kinds.items():
            for y in people:
                if y in found:
                    ambiguous.add(y)
                found[y] = kind
        return {y: k for y, k in found.items() if y not in ambiguous and y != x}


def sample_chain(
    tree: FamilyTree, hops: int, rng: random.Random, attempts: int = 200, want: str | None = None, further: bool = False
) -> list[tuple[int, str, int]] | None:
    """A chain of ``hops`` facts (anchor, type, relative) from a random source, every prefix composable; with
    ``want``, only a chain that composes to that type; with ``further``, only one that goes on from one of
    ``kv.CHAIN_STATES`` (a husband's brother, then his son)."""
    relatives = [tree.relatives(p.id) for p in tree.people]
    for _ in range(attempts):
        source = rng.randrange(len(tree.people))
        path, state, facts, went_on = [source], "self", [], False
        while len(facts) < hops:
            options = [
                (y, kind)
                for y, kind in relatives[path[-1]].items()
                if y not in path and kv.compose(state, kind) is not None
            ]
            if not options:
                break
            y, kind = rng.choice(options)
            facts.append((path[-1], kind, y))
            went_on |= state in kv.CHAIN_STATES
            state = kv.compose(state, kind)
            path.append(y)
            truth = relatives[source].get(y)
            if truth != kv.reads_as(state):  # the rule table must agree with the tree, or the table is wrong
                raise AssertionError(f"rule table says {state}, tree says {truth} after {facts}")
        if len(facts) == hops and (want is None or kv.reads_as(state) == want) and (went_on or not further):
            return facts
    return None


def compose_chain(kinds: list[str]) -> str | None:
    """The type of the relative a chain of relation types reaches, or None (see ``kv.compose``)."""
    state = "self"
    for kind in kinds:
        state = kv.compose(state, kind)
        if state is None:
            return None
    return kv.reads_as(state)


def _pick(rng: random.Random, options: list):
    """rng.choice, drawing nothing when there is no choice (keeps classic stories as they always were)."""
    return options[0] if len(options) == 1 else rng.choice(options)


class KinshipDataSource:
    name = "kinship"
    kind = "data"
    Config = KinshipConfig

    def __init__(self, config: KinshipConfig, ctx: BuildContext | None = None) -> None:
        self.config = config
        self.seed = ctx.seed if ctx else 0

    def phrasings(self) -> dict[str, Phrasing]:
        """Split -> what its stories may say (see ``KinshipConfig.phrasings`` and ``phrasing_split``)."""
        c = self.config
        if c.phrasings == "classic":
            return dict.fromkeys(("train", "val", "test"), CLASSIC_PHRASING)
        if not c.phrasing_split:
            every = Phrasing(kp.FAMILIES, tuple(q for qs in kp.QUESTIONS.values() for q in qs), narrative=True)
            return dict.fromkeys(("train", "val", "test"), every)
        part = {
            name: Phrasing(kp.families(kp.PARTITIONS[name]), kp.QUESTIONS[name], narrative=True)
            for name in kp.PARTITIONS
        }
        return {"train": part["train"], "val": part["val"], "test": part["train"], HELD_OUT_SPLIT: part["held-out"]}

    def load(self) -> Dataset:
        splits = {}
        digest = hashlib.sha256()
        for split, phrasing in self.phrasings().items():
            spec = self.config.test if split == HELD_OUT_SPLIT else getattr(self.config, split)
            rng = random.Random(f"kinship/{self.seed}/{split}")  # string seeds hash stably across runs
            samples = []
            for j, hops in enumerate(spec.hops):
                count = spec.stories // len(spec.hops) + (1 if j < spec.stories % len(spec.hops) else 0)
                samples.extend(self.draw(rng, hops, phrasing, spec.noise_facts) for _ in range(count))
            rng.shuffle(samples)
            for sample in samples:
                digest.update(f"{sample['text']}|{sample['label']}\n".encode())
            splits[split] = samples
        return Dataset(
            task=TaskSpec("graph", len(kv.LABELS), kv.LABELS),
            port=Port("samples", frozenset({"text"}), edge_type_names=kv.TYPES),  # its relation inventory
            splits=splits,
            fingerprint=digest.hexdigest(),
            group_key="hops",
        )

    def draw(self, rng: random.Random, hops: int, phrasing: Phrasing, noise: Any) -> dict:
        """One story; with ``ask = person``, one whose question has a single answer (up to 100 draws)."""
        for _ in range(100):
            sample = self.story(rng, hops, phrasing, noise=noise)
            if sample is not None:
                return sample
        raise DataError(
            f"kinship: no {hops}-hop story in 100 draws asks for a single person",
            hint="lower data.noise_facts, or use ask = 'relation'",
        )

    def story(
        self,
        rng: random.Random,
        hops: int,
        phrasing: Phrasing = CLASSIC_PHRASING,
        words: list[tuple[str, list[int]]] | None = None,
        noise: int | tuple[int, int] | None = None,
    ) -> dict | None:
        """One sample; ``words``, when given, receives every relation word used and the entities it describes;
        ``noise`` distractor facts (default ``noise_facts``). With ``ask = person``, None where someone besides the
        target is also the source's <answer> (the question would have two answers)."""
        c = self.config
        # the answer's type first, then a chain that composes to it: chains drawn freely almost never end in a
        # child's spouse, and a reasoner that never sees that composition answers "son" for a son-in-law
        want = rng.choice(kv.TYPES) if c.balance_answers else None
        # a chain through a husband's brother is drawn for itself (the answers it reaches are few)
        further = hops >= 3 and c.compose_further > 0 and rng.random() < c.compose_further
        if further:
            want = None
        for attempt in range(500):  # a long chain fits most trees of the defaults, not every one
            tree = FamilyTree(rng, c.generations, c.max_children)
            facts = sample_chain(tree, hops, rng, want=want if attempt < 10 else None, further=further and attempt < 10)
            if facts is not None:
                break
        else:
            raise DataError(
                f"data.generations = {c.generations} and data.max_children = {c.max_children} make trees too small "
                f"for {hops}-hop chains",
                hint="raise generations or max_children",
            )
        females, males = list(kv.FEMALE_NAMES), list(kv.MALE_NAMES)
        rng.shuffle(females)
        rng.shuffle(males)
        names: dict[int, str] = {}
        gender = {p.id: p.gender for p in tree.people}

        def name(person: int) -> None:
            if person not in names:
                pool = females if gender[person] == kv.FEMALE else males
                names[person] = pool.pop()

        for anchor, _, relative in facts:
            name(relative)
            name(anchor)
        source, target = facts[0][0], facts[-1][2]
        on_chain = {p for f in facts for p in (f[0], f[2])}
        story_facts = list(facts)
        facts_of: dict[int, set] = {}  # person -> the story's facts about them
        relatives: dict[tuple[int, str], set] = {}  # (anchor, type) -> the relatives the story states

        def unnamable(person: int, used: tuple, via: tuple) -> bool:
            """Off the query, nothing outside ``used`` mentions them, and "anchor's <type>" names no one else
            of their gender for each ``(anchor, type)`` in ``via``: they may stay unnamed."""
            if person in (source, target) or not facts_of.get(person, set()) <= set(used):
                return False
            return not any(x != person and gender[x] == gender[person] for key in via for x in relatives.get(key, ()))

        def plan(todo: list) -> list[tuple[str, kp.Rendered]]:
            return self.plan(rng, todo, phrasing, names, gender, unnamable)

        units = plan(facts) if phrasing.streams else []
        taken = set(on_chain)
        noise = c.noise_facts if noise is None else noise
        if not isinstance(noise, int):
            noise = rng.randint(*noise)
        for _ in range(noise):  # true facts about people off the chain: distractors
            anchor = rng.choice(sorted(on_chain))
            options = [(y, k) for y, k in tree.relatives(anchor).items() if y not in taken]
            if options:
                y, kind = rng.choice(options)
                taken.add(y)
                name(y)
                story_facts.append((anchor, kind, y))
                if phrasing.streams:
                    units += plan(story_facts[-1:])
        if not phrasing.streams:  # templates that state two facts or leave people unnamed see the whole story
            for fact in story_facts:
                facts_of.setdefault(fact[0], set()).add(fact)
                facts_of.setdefault(fact[2], set()).add(fact)
                for anchor, kind, relative in kp.orientations(fact):
                    relatives.setdefault((anchor, kind), set()).add(relative)
            units = plan(story_facts)
        rng.shuffle(units)
        named = {p for _, unit in units for *_, people, kind in unit.mentions if kind == "name" for p in people}
        if phrasing.narrative:
            for _ in range(rng.randrange(3)):
                line = rng.choice(kp.NARRATIVE)
                people = rng.sample(sorted(named), kp.people_slots(line))
                if len(people) == 2 and {frozenset((a, r)) for a, _, r in story_facts} & {frozenset(people)}:
                    continue  # the two must be people the story relates in no sentence: this one states nothing
                units.insert(rng.randint(0, len(units)), (None, kp.fill(line, dict(zip("XY", people)), names, rng)))
        answer = kv.word_for(compose_chain([f[1] for f in facts]), gender[target])
        if c.ask == "person" and _others_are(answer, source, target, story_facts, gender):
            return None
        ask = _pick(rng, list(phrasing.questions)) if c.ask == "relation" else f"Who is {{S}}'s {answer}?"
        units.append((None, kp.fill(ask, {"T": target, "S": source}, names, rng)))

        # one text, mentions at story offsets; entities numbered by first mention
        pieces, mentions, stated, offset = [], [], [], 0
        for _, unit in units:
            mentions += [(start + offset, end + offset, people, kind) for start, end, people, kind in unit.mentions]
            stated += unit.facts
            pieces.append(unit.text)
            offset += len(unit.text) + 1
        mentions.sort()
        text = " ".join(pieces)
        if phrasing.narrative and c.surnames and rng.random() < c.surnames:
            text, mentions = _surnamed(text, mentions, tree.surnames(rng), len(text) - len(units[-1][1].text))
        index: dict[int, int] = {}
        for *_, people, _ in mentions:
            for p in people:
                index.setdefault(p, len(index))
        label_of = lambda p: names[p] if p in named else None  # noqa: E731
        if words is not None:
            words += [(w, sorted(index[p] for p in people)) for _, unit in units for w, people in unit.words]
        who = lambda p: label_of(p) or "someone"  # noqa: E731
        return {
            "text": text,
            "label": kv.LABELS.index(answer),
            "hops": hops,
            "query": [names[target], names[source]],
            "chain": [(label_of(r), kv.word_for(k, gender[r]), label_of(a)) for a, k, r in facts],
            "entities": [{"name": label_of(p), "gender": gender[p]} for p in index],
            "mentions": [
                {"start": start, "end": end, "entities": sorted(index[p] for p in people), "kind": kind}
                for start, end, people, kind in mentions
            ],
            "facts": [[index[a], k, index[r]] for a, k, r in stated],
            "query_entities": [index[target], index[source]],
            "phrasings": sorted({family for family, _ in units if family}),
            "explanation": explanation([(who(a), kv.word_for(k, gender[r]), who(r)) for a, k, r in facts], answer),
            # every stated relation, in the order the story states them
            "summary": " ".join(f"{who(a)}'s {kv.word_for(k, gender[r])} is {who(r)}." for a, k, r in stated),
            **({"answer": names[target]} if c.ask == "person" else {}),  # who the question asks for
        }

    @staticmethod
    def plan(
        rng: random.Random,
        todo: list[tuple[int, str, int]],
        phrasing: Phrasing,
        names: dict[int, str],
        gender: dict[int, str],
        unnamable,
    ) -> list[tuple[str, kp.Rendered]]:
        """Phrase ``todo`` in order: for each fact not yet stated, a family (uniformly among those that can state
        it, with another remaining fact where a template states two), a template, a binding; then render it."""
        remaining = list(todo)
        units = []
        while remaining:
            fact = remaining.pop(0)
            flip = rng.random() < 0.5  # which way round a one-fact template states it, where both fit
            partners = [g for g in remaining if {g[0], g[2]} & {fact[0], fact[2]}]
            options = []
            for family in phrasing.families:
                fits = [(t, b) for t in family.templates if (b := kp.bindings(t, fact, partners, gender, unnamable))]
                if fits:
                    options.append((family, fits))
            if not options:
                raise DataError(f"kinship: no phrasing family can state {fact}")
            family, fits = _pick(rng, options)
            template, found = _pick(rng, fits)
            if template.arity == 1:
                binding = found[0] if len(found) == 1 else found[0 if flip else 1]
            else:
                binding = _pick(rng, found)
                remaining.remove(next(f for f in binding.used if f != fact))
            units.append((family.name, kp.render(template, binding, names, gender, rng, vary=phrasing.narrative)))
        return units


def _surnamed(text: str, mentions: list, surname: dict[int, str], question: int) -> tuple[str, list]:
    """``text`` with each person's first name mention before offset ``question`` followed by their surname
    (the mention grows to hold it), and ``mentions`` moved to match."""
    pieces, moved, shift, last, done = [], [], 0, 0, set()
    for start, end, people, kind in mentions:
        grown = 0
        if kind == "name" and start < question and people[0] not in done:
            done.add(people[0])
            pieces += [text[last:end], " " + surname[people[0]]]
            last, grown = end, len(surname[people[0]]) + 1
        moved.append((start + shift, end + shift + grown, people, kind))
        shift += grown
    return "".join(pieces) + text[last:], moved


def _others_are(answer: str, source: int, target: int, facts: list, gender: dict[int, str]) -> bool:
    """Whether someone in the story besides ``target`` is the source's ``answer`` (relations composed outward from
    the source along the story's facts)."""
    state, todo = {source: "self"}, [source]
    oriented = [o for fact in facts for o in kp.orientations(fact)]
    while todo:
        anchor = todo.pop()
        for a, kind, relative in oriented:
            if a == anchor and relative not in state and (composed := kv.compose(state[anchor], kind)) is not None:
                state[relative] = composed
                todo.append(relative)
    return any(
        p not in (source, target) and k != "self" and kv.word_for(kv.reads_as(k), gender[p]) == answer
        for p, k in state.items()
    )


def explanation(chain: list[tuple[str, str, str]], answer: str) -> str:
    """The answer and its reason in one sentence, the chain's facts in order from the source: "Peter is Maria's
    grandson: Maria's daughter is Julia, and Julia's son is Peter." ``chain`` holds (anchor, word, relative)."""
    source, target = chain[0][0], chain[-1][2]
    clauses = [f"{anchor}'s {word} is {relative}" for anchor, word, relative in chain]
    reason = clauses[0] if len(clauses) == 1 else ", ".join(clauses[:-1]) + ", and " + clauses[-1]
    return f"{target} is {source}'s {answer}: {reason}."


def oracle(sample: dict) -> int:
    """The symbolic answer: compose the gold chain's types, gender from the last word."""
    kinds, gender = [], kv.FEMALE
    for _, word, _ in sample["chain"]:
        kind, gender = kv.WORD_MEANING[word]
        kinds.append(kind)
    return kv.LABELS.index(kv.word_for(compose_chain(kinds), gender))
