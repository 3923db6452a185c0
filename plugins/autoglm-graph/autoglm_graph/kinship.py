"""``kinship``: seeded stories about families, asking how two people are related.

Every story is grounded in a sampled family tree: a chain of k stated facts
walks from the query's source to its target through distinct people of one
tree, and each step's relation is read off the tree. The answer is the chain
composed with :func:`~autoglm_graph.kinship_vocab.compose`; the generator
checks that it agrees with the tree and keeps only chains whose every prefix
composes to a defined relation (ambiguous compositions are excluded, not
guessed). Grounding in a tree avoids inventing a person who must already be in
the story (a daughter's father's wife is the speaker herself).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

from autoglm_graph import kinship_vocab as kv
from autoglm_graph.specs import KinshipConfig
from autoglm_sdk.plugin import BuildContext, DataError, Dataset, Port, TaskSpec

# Sentence templates of this generator: S is O's <word>. The builder also
# understands phrasings that are not here (tests use them as held-out paraphrases).
FACT_TEMPLATES = (
    "{S} is {O}'s {w}.",
    "{O}'s {w} is {S}.",
    "{S}, the {w} of {O}, {filler}.",
    "{O} has a {w} named {S}.",
    "{O} has a {w} called {S}.",
)
FILLERS = (
    "likes to bake bread",
    "went hiking last weekend",
    "lives by the sea",
    "plays the violin",
    "works at the library",
    "collects old maps",
    "is learning to sail",
    "grows tomatoes",
    "repairs bicycles",
    "sings in a choir",
)
QUERY_TEMPLATES = ("How is {T} related to {S}?", "What is {T} to {S}?")


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
            "pibling": union([self.siblings(p) for p in self.parents(x)]),
            "nibling": union([self.children(s) for s in self.siblings(x)]),
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
    tree: FamilyTree, hops: int, rng: random.Random, attempts: int = 200
) -> list[tuple[int, str, int]] | None:
    """A chain of ``hops`` facts (anchor, type, relative) from a random source, every prefix composable."""
    relatives = [tree.relatives(p.id) for p in tree.people]
    for _ in range(attempts):
        source = rng.randrange(len(tree.people))
        path, state, facts = [source], "self", []
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
            state = kv.compose(state, kind)
            path.append(y)
            truth = relatives[source].get(y)
            if truth != state:  # the rule table must agree with the tree, or the table is wrong
                raise AssertionError(f"rule table says {state}, tree says {truth} after {facts}")
        if len(facts) == hops:
            return facts
    return None


def compose_chain(kinds: list[str]) -> str | None:
    state = "self"
    for kind in kinds:
        state = kv.compose(state, kind)
        if state is None:
            return None
    return state


class KinshipDataSource:
    name = "kinship"
    kind = "data"
    Config = KinshipConfig

    def __init__(self, config: KinshipConfig, ctx: BuildContext | None = None) -> None:
        self.config = config
        self.seed = ctx.seed if ctx else 0

    def load(self) -> Dataset:
        splits = {}
        digest = hashlib.sha256()
        for index, split in enumerate(("train", "val", "test")):
            spec = getattr(self.config, split)
            rng = random.Random(f"kinship/{self.seed}/{split}")  # string seeds hash stably across runs
            samples = []
            for j, hops in enumerate(spec.hops):
                count = spec.stories // len(spec.hops) + (1 if j < spec.stories % len(spec.hops) else 0)
                samples.extend(self.story(rng, hops) for _ in range(count))
            rng.shuffle(samples)
            for sample in samples:
                digest.update(f"{sample['text']}|{sample['label']}\n".encode())
            splits[split] = samples
        return Dataset(
            task=TaskSpec("graph", len(kv.LABELS), kv.LABELS),
            port=Port("samples", frozenset({"text"})),
            splits=splits,
            fingerprint=digest.hexdigest(),
            group_key="hops",
        )

    def story(self, rng: random.Random, hops: int) -> dict:
        c = self.config
        for _ in range(50):
            tree = FamilyTree(rng, c.generations, c.max_children)
            facts = sample_chain(tree, hops, rng)
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

        def name(person: int) -> str:
            if person not in names:
                pool = females if tree.people[person].gender == kv.FEMALE else males
                names[person] = pool.pop()
            return names[person]

        sentences, chain = [], []
        for anchor, kind, relative in facts:
            chain.append((name(relative), kv.word_for(kind, tree.people[relative].gender), name(anchor)))
            sentences.append(self.sentence(rng, tree, anchor, kind, relative, name))
        on_chain = {p for f in facts for p in (f[0], f[2])}
        for _ in range(c.noise_facts):  # true facts about people off the chain: distractors
            anchor = rng.choice(sorted(on_chain))
            options = [(y, k) for y, k in tree.relatives(anchor).items() if y not in on_chain and y not in names]
            if options:
                y, kind = rng.choice(options)
                sentences.append(self.sentence(rng, tree, anchor, kind, y, name))
        rng.shuffle(sentences)
        source, target = facts[0][0], facts[-1][2]
        answer = kv.word_for(compose_chain([f[1] for f in facts]), tree.people[target].gender)
        question = rng.choice(QUERY_TEMPLATES).format(T=name(target), S=name(source))
        return {
            "text": " ".join(sentences) + " " + question,
            "label": kv.LABELS.index(answer),
            "hops": hops,
            "query": [name(target), name(source)],
            "chain": chain,
        }

    @staticmethod
    def sentence(rng: random.Random, tree: FamilyTree, anchor: int, kind: str, relative: int, name) -> str:
        """State "relative is anchor's kind" in either direction with a random template."""
        if rng.random() < 0.5:
            subject, obj, kind = relative, anchor, kind
        else:
            subject, obj, kind = anchor, relative, kv.INVERSE[kind]
        word = kv.word_for(kind, tree.people[subject].gender)
        return rng.choice(FACT_TEMPLATES).format(S=name(subject), O=name(obj), w=word, filler=rng.choice(FILLERS))


def oracle(sample: dict) -> int:
    """The symbolic answer: compose the gold chain's types, gender from the last word."""
    kinds, gender = [], kv.FEMALE
    for _, word, _ in sample["chain"]:
        kind, gender = kv.WORD_MEANING[word]
        kinds.append(kind)
    return kv.LABELS.index(kv.word_for(compose_chain(kinds), gender))
