"""The phrasing bank of the ``kinship`` generator: fact templates in named
families, question templates, narrative filler sentences, and the renderer that
turns a template plus the people and facts bound to it into a sentence with
gold annotations (mentions with character offsets, and the facts it states).

Pure Python, no torch. Every sentence here was written for this project.

**Facts** are ``(anchor, type, relative)`` triples of person ids, read
"relative is anchor's <type>" (types from :mod:`kinship_vocab`).

**Templates** bind people to *roles* through a *shape*, the facts the template
states:

* ``one``: one fact, anchor ``O`` and relative ``S`` ("S is O's w");
* ``chain``: two facts through a middle person, ``A -> B -> C`` ("B is A's w1,
  C is B's w2");
* ``list``: two facts with the same type and the same relative, ``X -> M`` and
  ``Z -> M`` ("M is X's w1 and Z's w1": "Karen has two children, X and Z").

Slots in a template's text:

* ``{O}``, ``{A}``, ...: the role's name (a ``name`` mention);
* ``{O.his}``, ``{O.He}``, ``{X+Z.their}``, ...: a pronoun for one role
  (he, him, his, hers, himself, rendered in the role's gender) or for several
  (they, them, their); a capital first letter capitalises it (a ``pronoun``
  mention);
* ``{w}``/``{w1}``/``{w2}``: the word for fact N's relative ("mother" in "Tom
  is Anna's mother" is not a mention: predicates and appositions to names are
  not); ``{v}``/``{vN}``: the word for fact N's anchor, from the relative's side;
  ``{vs}``: the plural word for a list's anchors ("children");
* ``{d}``/``{dN}``: the word for fact N's relative as a ``description`` mention
  of that (unnamed) person ("Mia's *mother* has a brother named James"); a role
  with a description slot has no name slot and is rendered unnamed;
* ``a`` before ``w``/``v``/``d`` adds the indefinite article ("an aunt");
* ``{filler}``: an activity ("plays the violin").

Families are partitioned into training, validation and held-out families
(:data:`TRAIN_FAMILIES`, :data:`VAL_FAMILIES`, :data:`HELD_OUT_FAMILIES`);
questions likewise (:data:`QUESTIONS`). The first family, ``classic``, holds the
generator's original five templates, all of which ``text-relations`` reads.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from autoglm_graph import kinship_vocab as kv

Fact = tuple[int, str, int]  # (anchor, type, relative): "relative is anchor's type"

SHAPES: dict[str, tuple[tuple[str, str], ...]] = {
    "one": (("O", "S"),),
    "chain": (("A", "B"), ("B", "C")),
    "list": (("X", "M"), ("Z", "M")),
}
SINGULAR_PRONOUNS = {  # form -> (female, male)
    "he": ("she", "he"),
    "him": ("her", "him"),
    "his": ("her", "his"),
    "hers": ("hers", "his"),
    "himself": ("herself", "himself"),
}
PLURAL_PRONOUNS = ("they", "them", "their")
#: pronoun surface (lower case) -> the gender it names, or "plural"
PRONOUN_GENDER = {
    **{w: kv.FEMALE for pair in SINGULAR_PRONOUNS.values() for w in pair[:1]},
    **{w: kv.MALE for pair in SINGULAR_PRONOUNS.values() for w in pair[1:]},
    **{w: "plural" for w in PLURAL_PRONOUNS},
}
#: type -> (plural when all are female, when all are male, when mixed); None where English has no word
PLURALS: dict[str, tuple[str | None, str | None, str | None]] = {
    "parent": (None, None, "parents"),
    "child": ("daughters", "sons", "children"),
    "sibling": ("sisters", "brothers", "siblings"),
    "spouse": (None, None, None),
    "grandparent": ("grandmothers", "grandfathers", "grandparents"),
    "grandchild": ("granddaughters", "grandsons", "grandchildren"),
    "pibling": ("aunts", "uncles", None),
    "nibling": ("nieces", "nephews", None),
    "parent_in_law": (None, None, "parents-in-law"),
    "child_in_law": ("daughters-in-law", "sons-in-law", None),
    "sibling_in_law": ("sisters-in-law", "brothers-in-law", None),
}
#: plural word -> (type, gender of everyone it describes, or None when mixed)
PLURAL_MEANING: dict[str, tuple[str, str | None]] = {
    word: (kind, (kv.FEMALE, kv.MALE, None)[i])
    for kind, words in PLURALS.items()
    for i, word in enumerate(words)
    if word is not None
}

# Activities for "{filler}": third person, fit after a name or "who". The first ten are the
# original generator's (the classic family draws from them in the same order).
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


#: words put before a relation word now and then in the bank's stories ("her younger brother"); they change
#: nothing a sentence states. Type -> adjectives, and "*" for every type
ADJECTIVES: dict[str, tuple[str, ...]] = {
    "*": ("beloved", "dear"),
    "sibling": ("older", "younger", "big", "little", "twin"),
    "child": ("eldest", "youngest", "little"),
    "grandchild": ("eldest", "youngest", "little"),
    "spouse": ("loving", "new"),
    "nibling": ("little", "favourite"),
    "pibling": ("favourite",),
    "grandparent": ("old",),
}
#: in the bank's stories, the share of relation words said in everyday words (mom, grandpa), and the share
#: given an adjective: no template bank foresees every wording, so training should not see one word per relation
EVERYDAY, ADJECTIVE = 0.15, 0.15


def relation_word(kind: str, gender: str, rng: random.Random | None = None) -> tuple[str, str]:
    """(adjective or "", word) for someone who is another's ``kind``; with ``rng``, now and then an everyday
    word or an adjective (see :data:`EVERYDAY`), else always the plain word."""
    word = kv.word_for(kind, gender)
    if rng is None:
        return "", word
    draw = rng.random()
    if draw < EVERYDAY:
        return "", rng.choice(kv.INFORMAL_WORDS[kind][gender == kv.MALE]) if kind in kv.INFORMAL_WORDS else word
    if draw < EVERYDAY + ADJECTIVE:
        return rng.choice(ADJECTIVES.get(kind, ()) + ADJECTIVES["*"]), word
    return "", word


def plural(kind: str, genders: Sequence[str]) -> str | None:
    """The plural word for people who are all someone's ``kind``, or None."""
    female, male, mixed = PLURALS[kind]
    if all(g == kv.FEMALE for g in genders):
        return female
    if all(g == kv.MALE for g in genders):
        return male
    return mixed


_SLOT = re.compile(r"\{([^{}]+)\}")
_ROLE = re.compile(r"[A-Z](?:\+[A-Z])*")
_WORD = re.compile(r"(a?)([wvd])([12]?)")


@dataclass(frozen=True)
class Template:
    """One phrasing: text with slots, the shape of the facts it states, and constraints.

    ``kinds``: per fact, the types it may state (None: any); ``genders``: role -> required gender.
    """

    text: str
    shape: str = "one"
    kinds: tuple[tuple[str, ...] | None, ...] = ()
    genders: tuple[tuple[str, str], ...] = ()
    named: frozenset[str] = field(init=False, repr=False, compare=False)
    unnamed: frozenset[str] = field(init=False, repr=False, compare=False)
    plural_word: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        facts = SHAPES[self.shape]
        roles = {r for pair in facts for r in pair}
        named, described, plural_word = set(), set(), False
        for slot in _SLOT.findall(self.text):
            if slot == "filler":
                continue
            if slot == "vs":
                if self.shape != "list":
                    raise ValueError(f"{self.text!r}: {{vs}} needs the list shape")
                plural_word = True
                continue
            word = _WORD.fullmatch(slot)
            if word:
                index = int(word[3] or 1) - 1
                if index >= len(facts):
                    raise ValueError(f"{self.text!r}: {{{slot}}} names fact {index + 1} of {len(facts)}")
                if word[2] == "d":
                    described.add(facts[index][1])
                continue
            role, _, form = slot.partition(".")
            if not _ROLE.fullmatch(role) or not set(role.split("+")) <= roles:
                raise ValueError(f"{self.text!r}: unknown slot {{{slot}}}")
            if not form:
                named.add(role)
            elif form.lower() not in (PLURAL_PRONOUNS if "+" in role else SINGULAR_PRONOUNS):
                raise ValueError(f"{self.text!r}: unknown pronoun form {{{slot}}}")
        if named & described or named | described != roles:
            raise ValueError(f"{self.text!r}: every role needs exactly one of a name or a description")
        if len(self.kinds) not in (0, len(facts)):
            raise ValueError(f"{self.text!r}: kinds needs one entry per fact")
        object.__setattr__(self, "named", frozenset(named))
        object.__setattr__(self, "unnamed", frozenset(described))
        object.__setattr__(self, "plural_word", plural_word)

    @property
    def arity(self) -> int:
        return len(SHAPES[self.shape])


@dataclass(frozen=True)
class Family:
    name: str
    templates: tuple[Template, ...]


def _t(text: str, shape: str = "one", kinds: Sequence[Sequence[str] | None] = (), **genders: str) -> Template:
    return Template(text, shape, tuple(None if k is None else tuple(k) for k in kinds), tuple(sorted(genders.items())))


def _family(name: str, *templates: Template) -> Family:
    return Family(name, templates)


_YOUNGER = ("child", "grandchild", "nibling", "sibling")  # S takes after O: O is S's elder or sibling
_MANY = ("sibling", "child", "grandchild", "nibling", "pibling", "sibling_in_law")  # "a son of hers"
_ELDER = ("parent", "grandparent", "pibling")  # S brought O up: S is O's elder
_BY_MARRIAGE = ("spouse", "parent_in_law", "child_in_law", "sibling_in_law")  # begins on a wedding day
_NOT_SPOUSE = tuple(k for k in kv.TYPES if k != "spouse")  # "stayed at his wife's house" reads oddly
_PAIRED = tuple(k for k in kv.TYPES if k not in ("sibling", "sibling_in_law"))  # no "sister and sister"

FAMILIES: tuple[Family, ...] = (
    # ---- training families ---------------------------------------------------------
    _family(  # the original generator's templates, in their original order
        "classic",
        _t("{S} is {O}'s {w}."),
        _t("{O}'s {w} is {S}."),
        _t("{S}, the {w} of {O}, {filler}."),
        _t("{O} has a {w} named {S}."),
        _t("{O} has a {w} called {S}."),
    ),
    _family(
        "possessive",
        _t("{O}'s {w} {S} {filler}."),
        _t("Yesterday {O}'s {w} {S} came over for dinner."),
        _t("{S}, {O}'s {w}, {filler}."),
        _t("{O}'s {w}, {S}, {filler}."),
    ),
    _family(
        "outing",
        _t("{O} went fishing with {O.his} {w} {S}."),
        _t("{O} called {O.his} {w} {S} last night."),
        _t("{O} took {O.his} {w} {S} to the zoo."),
        _t("{O} visited {O.his} {w} {S} on Sunday."),
        _t("{O} built a shed {O.himself}, and {O.his} {w} {S} painted it."),
    ),
    _family(
        "follow-up",
        _t("{O} went shopping. {O.His} {w} {S} carried the bags."),
        _t("{O} {filler}. {O.He} is {S}'s {v}."),
        _t("{S} {filler}. {S.He} is the {w} of {O}."),
        _t("{O} missed the bus, so {O.his} {w} {S} drove {O.him} to work."),
    ),
    _family(
        "together",
        _t("{O} and {O.his} {w} {S} went camping. {O+S.They} slept under the stars."),
        _t("{O} and {O.his} {w} {S} cooked dinner together, and {O+S.they} burnt the rice."),
        _t("{S} spent the weekend with {S.his} {v} {O}, and {S+O.they} painted the fence."),
        _t("{O} met {O.his} {w} {S} at the station and drove {S.him} home."),
    ),
    _family(
        "marriage",
        _t("{O} married {S}.", kinds=[["spouse"]]),
        _t("{O} is married to {S}.", kinds=[["spouse"]]),
        _t("{O} and {S} got married last spring.", kinds=[["spouse"]]),
        _t("{O} wed {S} in a small ceremony by the lake.", kinds=[["spouse"]]),
    ),
    _family(
        "birth",
        _t("{O} gave birth to {S}.", kinds=[["child"]], O=kv.FEMALE),
        _t("{S} was born to {O} on a snowy morning.", kinds=[["child"]]),
        _t("{O} raised {O.his} {w} {S} on a farm.", kinds=[["child", "grandchild", "nibling"]]),
        _t("{O} welcomed a baby {w}, {S}.", kinds=[["child"]]),
    ),
    _family(
        "lists",
        _t("{M} has two {vs}, {X} and {Z}.", "list"),
        _t("{X} and {Z} are {M}'s {vs}.", "list"),
        _t("{M}'s {vs} are {X} and {Z}.", "list"),
        _t("{M} is the {w1} of {X} and {Z}.", "list"),
        _t("{X} and {Z} visited {X+Z.their} {w1} {M}.", "list"),
        # "they" and "their" after a list mean the listed people, not the one they are listed for
        _t("{M} has two {vs}, {X} and {Z}. {X+Z.They} both love football.", "list"),
        _t("{X} and {Z} are {M}'s {vs}, and {X+Z.their} house is always noisy.", "list"),
    ),
    _family(
        "linked",
        _t("{A}'s {w1} {B} has {aw2} named {C}.", "chain"),
        _t("{B}, {A}'s {w1}, is {C}'s {v2}.", "chain"),
        _t("{A}'s {w1} {B} married {C}.", "chain", kinds=[None, ["spouse"]]),
        _t("{C} is the {w2} of {A}'s {w1}, {B}.", "chain"),
    ),
    _family(
        "unnamed-link",
        _t("{A}'s {d1} has {aw2} named {C}.", "chain"),
        _t("{C} is the {w2} of {A}'s {d1}.", "chain"),
        _t("{A} {filler}. {A.His} {d1} married {C}.", "chain", kinds=[None, ["spouse"]]),
        _t("{X} and {Z} went to the fair. {X+Z.Their} {d1} took {X+Z.them} on the big wheel.", "list"),
        _t("{X} and {Z} spent the summer by the lake, where {X+Z.their} {d1} taught {X+Z.them} to swim.", "list"),
        _t("{A}'s {d1}'s {w2}, {C}, {filler}.", "chain"),
        _t("{A} lives in the city. {A.His} {d1}'s {w2} {C} visits every week.", "chain"),
    ),
    _family(  # an off-chain relative mentioned only by a relation word
        "unnamed-relative",
        _t("{O}'s {d} {filler}."),
        _t("{O} lives with {O.his} {d} in a flat by the river."),
        _t("{O} and {O.his} {d} went skiing in January."),
        _t("{O} has {ad} who {filler}."),
    ),
    _family(  # relative clauses around the relation
        "relative-clause",
        _t("{S}, who is {O}'s {w}, {filler}."),
        _t("{O}'s {w}, who {filler}, is {S}."),
        _t("{S}, whose {v} is {O}, {filler}."),
        _t("{O}, whose {w} {S} {filler}, rarely has a quiet weekend."),
        _t("{O} has {aw}, {S}, who {filler}."),
        _t("{C}, whose {v2} {B} is {A}'s {w1}, {filler}.", "chain"),
    ),
    _family(  # an event, the relative in object position
        "occasion",
        _t("For {O.his} birthday, {O} got a card from {O.his} {w} {S}."),
        _t("At the wedding, {O} danced with {O.his} {w} {S}."),
        _t("{O} borrowed a ladder from {O.his} {w} {S}."),
        _t("At the graduation, {S} cheered louder than anyone for {S.his} {v} {O}."),
        _t("During the storm, {S} stayed at {S.his} {v} {O}'s house.", kinds=[_NOT_SPOUSE]),
        _t("{O} got a lift to the airport from {O.his} {w} {S}."),
        _t("On Saturday {O} helped {O.his} {w} {S} move a sofa up three flights of stairs."),
    ),
    _family(  # passives: the relative is the agent after "by"
        "passive",
        _t("{O} was raised by {O.his} {w} {S}.", kinds=[_ELDER]),
        _t("The old piano was left to {O} by {O.his} {w} {S}."),
        _t("{O} was picked up from school by {O.his} {w} {S}.", kinds=[(*_ELDER, "sibling")]),
        _t("A surprise party was thrown for {O} by {O.his} {w} {S}."),
        _t("{S} was visited in hospital by {S.his} {v} {O}."),
        _t("The photo of {O} on the mantelpiece was taken by {O.his} {w} {S}."),
    ),
    _family(  # "X and Y are ...": both words, or a plural the vocabulary has
        "pairs",
        _t("{O} and {S} are {v} and {w}.", kinds=[_PAIRED]),
        _t("{O} and {S} are sisters.", kinds=[["sibling"]], O=kv.FEMALE, S=kv.FEMALE),
        _t("{O} and {S} are brothers.", kinds=[["sibling"]], O=kv.MALE, S=kv.MALE),
        _t("{O} and {S} are brother and sister.", kinds=[["sibling"]], O=kv.MALE, S=kv.FEMALE),
        _t("{O} and {S} are husband and wife.", kinds=[["spouse"]], O=kv.MALE, S=kv.FEMALE),
        _t("{O} and {S} are sisters-in-law.", kinds=[["sibling_in_law"]], O=kv.FEMALE, S=kv.FEMALE),
        _t("{O} and {S} are brothers-in-law.", kinds=[["sibling_in_law"]], O=kv.MALE, S=kv.MALE),
    ),
    _family(  # the relation word before the relative's name
        "word-first",
        _t("The {w} of {O}, {S}, {filler}."),
        _t("As {O}'s {w}, {S} was the first to hear the news."),
        _t("{O} moved to a new town last spring. {O.His} {w}, {S}, helped {O.him} unpack the boxes."),
        _t("Being {O}'s {w}, {S} knew {O.him} better than anyone."),
        _t("Of all {O}'s relatives, {O.his} {w} {S} tells the best stories."),
        _t("{O.His} {w} {S} taught {O} how to drive."),
    ),
    _family(  # a scene, then the relation through a pronoun in the next sentence
        "two-sentence",
        _t("{O} opened the door. There stood {O.his} {w}, {S}, holding a basket of apples."),
        _t("{S} rang the bell twice. {S.He} had come to see {S.his} {v}, {O}."),
        _t("{O} has a secret. Only {O.his} {w} {S} knows it."),
        _t("{O} writes poems. {O.His} {w} {S} reads every single one."),
        _t("{S} and {O} talk on the phone every evening. {S.He} is {O}'s {w}."),
    ),
    _family(  # relatives described, never named, in new wordings
        "described",
        _t("{O} inherited a clock from {O.his} {d}."),
        _t("{O}'s {d} sent {O.him} a parcel of books."),
        _t("{O}'s {d} is a nurse, and {S.he} works nights."),
        _t("Every spring {O} visits {O.his} {d} in the mountains."),
        _t("{A}'s {d1} lives abroad with {C}, whom {B.he} married in Lisbon.", "chain", kinds=[None, ["spouse"]]),
        _t("{A}'s {d1} is very proud of {B.his} {w2}, {C}.", "chain"),
        _t("{X} and {Z} spent every Sunday at {X+Z.their} {d1}'s house.", "list"),
    ),
    _family(  # two facts through one person, new connectives
        "two-facts",
        _t("{A}, {B}'s {v1}, and {C}, {B}'s {w2}, went to the match together.", "chain"),
        _t("{B} invited {B.his} {v1} {A} and {B.his} {w2} {C} over for lunch.", "chain"),
        _t("{A}'s {w1} is {B}, whose {w2} is {C}.", "chain"),
        _t("{B} has {aw2}, {C}, and {av1}, {A}.", "chain"),
        _t("{C} is {B}'s {w2}, just as {A} is {B.his} {v1}.", "chain"),
        _t("{B}'s {v1} {A} and {w2} {C} arrived at the same time.", "chain"),
    ),
    _family(  # copulas in other wordings
        "copula",
        _t("If you mean {O}'s {w}, that would be {S}."),
        _t("{S}'s {v} is none other than {O}."),
        _t("Apart from being {O}'s {w}, {S} is {O.his} closest friend."),
        _t("{O} trusts {S} completely. {S.He} is {O.his} {w}, after all."),
        _t("{S} became {O}'s {w} on the day of the wedding.", kinds=[_BY_MARRIAGE]),
    ),
    _family(  # one relative shared by two people
        "group",
        _t("{M} is proud of {M.his} {vs}, {X} and {Z}.", "list"),
        _t("{M} taught {M.his} {vs}, {X} and {Z}, to play chess.", "list"),
        _t("{X} went to the theatre with {Z} and {X+Z.their} {w1} {M}.", "list"),
        _t("{X} and {Z} have the same {w1}, {M}.", "list"),
        _t("Neither {X} nor {Z} ever forgets {X+Z.their} {w1} {M}'s birthday.", "list"),
    ),
    _family(  # asides, quotes and time clauses around the relation
        "asides",
        _t("{O}'s {w} ({S}) {filler}."),
        _t("{S} - {O}'s {w} - {filler}."),
        _t('"This is my {w}, {S}," {O} told the neighbours.'),
        _t("Ever since {O.his} {w} {S} moved in, {O} has been much happier."),
        _t("{O} wanted to surprise {O.his} {w} {S} with a new bike."),
        _t("{O}'s {w} {S} turned forty last week, and {S.he} threw a big party."),
    ),
    _family(  # a fact stated beside people who are not party to it: a pronoun for someone else, "them" for a
        # group only some of whom the fact is about, or for things; and "his" for the nearer person, not the subject
        "bystanders",
        _t("{A} had the flu, so {A.his} {w1} {B} sent {B.his} own {w2}, {C}, over with soup.", "chain"),
        _t("{B} is {A}'s {w1}. {A} often bakes for {B} and {B.his} {w2} {C}.", "chain"),
        _t("{A}'s {w1} {B} came to stay for a week, and {B.his} {w2} {C} cooked for {A+B.them} every night.", "chain"),
        _t("{A} went to the fair with {A.his} {w1} {B}. {B}'s {w2} {C} met {A+B.them} at the gate.", "chain"),
        _t("{C} made a pie for {A} and {A.his} {w1} {B}. {C} is {B}'s {w2}.", "chain"),
        _t("{B} is {A}'s {w1}. {B}'s {w2} {C} fixed {A}'s roof last summer.", "chain"),
        _t("{A}'s {w1} is {B}. {B.He} often visits {A} with {B.his} {w2} {C}.", "chain"),
        _t(
            "When {A} was little, {A.his} {w1} {B} taught {A.him} to ski, and {B}'s {w2} {C} still writes to {A}.",
            "chain",
        ),
        _t("{A} and {A.his} {w1} {B} share a car, and {B}'s {w2} {C} borrows it from {A+B.them} on weekends.", "chain"),
        _t("{O}'s {w} {S} baked biscuits and gave them to the neighbours."),
        _t("{O} and {O.his} {w} {S} picked apples and ate them on the way home."),
        _t("{X} and {Z} were hungry, so {X+Z.their} {w1} {M} made {X+Z.them} pancakes.", "list"),
    ),
    # ---- general English constructions, each with several wordings: what carries over to phrasings no
    # template foresees is the construction (a relation said with "as", a possessor of a possessor, two relations
    # of one person joined by "and"), far more than any one sentence
    _family(  # the relation in an "as" phrase after the object: the object is the relative, not the subject
        "as-phrase",
        _t("{O} always refers to {S} as {O.his} {w}."),
        _t("{O} pointed {S} out in the old photo as {O.his} {w}."),
        _t("At the reunion, {O} presented {S} as {O.his} {w}."),
        _t("{S} came to the hospital as {O}'s {w}, not as a doctor."),
        _t("{O} knows {S} only as {O.his} {w}; they rarely talk."),
    ),
    _family(  # one person, two relations joined by "and", "as well as", "not only ... but also"
        "coordinated",
        _t("{B} is {A}'s {w1} as well as {C}'s {v2}.", "chain"),
        _t("{B}, who is {A}'s {w1} and {C}'s {v2}, {filler}.", "chain"),
        _t("{B} is not only {A}'s {w1} but also {C}'s {v2}.", "chain"),
        _t("{B} is the {w1} of {A} and the {v2} of {C}.", "chain"),
        _t("{A} and {C} are both related to {B}: {B.he} is {A}'s {w1} and {C}'s {v2}.", "chain"),
    ),
    _family(  # a possessor of a possessor: the middle person is never named
        "nested",
        _t("{A}'s {d1}'s {w2} is called {C}.", "chain"),
        _t("{C} turned out to be {A}'s {d1}'s {w2}.", "chain"),
        _t("Everyone knows that {A}'s {d1}'s {w2} is {C}.", "chain"),
        _t("{C}, the {w2} of {A}'s {d1}, {filler}.", "chain"),
        _t("{A} {filler}. {C} is the {w2} of {A.his} {d1}.", "chain"),
    ),
    _family(  # "a cousin of hers": the possessor after "of", often a pronoun from an earlier sentence
        "of-possessor",
        _t("{S}, {aw} of {O}'s, {filler}.", kinds=[_MANY]),
        _t("{O} {filler}. {S}, {aw} of {O.hers}, often helps out.", kinds=[_MANY]),
        _t("{O} has a big family. {S}, {aw} of {O.hers}, lives in Spain.", kinds=[_MANY]),
        _t("{S} {filler}. As {aw} of {O}'s, {S.he} gets invited to everything.", kinds=[_MANY]),
    ),
    _family(  # a pronoun after a named aside, an object or a relative clause is about the person just named, not
        # the possessor or subject before them, even where both have its gender ("Carl's father, Gus, farms with his
        # wife": Gus's wife)
        "aside-antecedent",
        _t("{A}'s {w1}, {B}, {filler} together with {B.his} {w2}, {C}.", "chain"),
        _t("{A} has {aw1}, {B}, who {filler}. {B.His} {w2}, {C}, thinks that is wonderful.", "chain"),
        _t("{C}'s {v2}, {B}, {filler}. {B.His} {v1}, {A}, lives close by.", "chain"),
        _t("{A} went to see {A.his} {w1}, {B}. {B.He} was at home with {B.his} {w2}, {C}.", "chain"),
        _t("Last winter {A}'s {w1} {B} moved house, and {B.his} {w2} {C} helped {B.him} pack.", "chain"),
        _t("{A} sat next to {B}, {A.his} {w1}, whose {w2} {C} {filler}.", "chain"),
    ),
    _family(  # two people with one relative, said through "their"
        "shared-relative",
        _t("{X} and {Z} miss {X+Z.their} {d1} terribly.", "list"),
        _t("{X} and {Z} say that {M} is {X+Z.their} {w1}.", "list"),
        _t("To {X} and {Z}, {M} is simply {X+Z.their} {w1}.", "list"),
        _t("{X} and {Z} visit {X+Z.their} {d1} every Easter.", "list"),
        _t("{X} and {Z} got a postcard from {X+Z.their} {w1}, {M}.", "list"),
        # the description last, or before the place of a visit: "their sister" with no name after it is a person
        _t("{X} and {Z} phoned {X+Z.their} {d1}.", "list"),
        _t("On Sundays {X} and {Z} help {X+Z.their} {d1} with the shopping.", "list"),
    ),
    # ---- validation families -------------------------------------------------------
    _family(
        "of",
        _t("{S} is the {w} of {O}."),
        _t("The {w} of {O} is {S}."),
        _t("Everyone in town knows {S} as the {w} of {O}."),
        _t("{S} happens to be the {w} of {O}."),
    ),
    _family(
        "household",
        _t("{O} lives next door to {O.his} {w} {S}."),
        _t("{S} often cooks for {S.his} {v} {O}."),
        _t("{O} spent the holidays with {O.his} {w} {S}, and {O+S.they} played cards every night."),
        _t("{S} wrote a long letter to {S.his} {v} {O}."),
        _t("{O} shares a flat with {O.his} {d}."),
    ),
    _family(
        "gathering",
        _t("At the picnic, {M} sat between {M.his} {vs}, {X} and {Z}.", "list"),
        _t("Nobody was surprised when {A}'s {w1} {B} brought {B.his} {w2} {C} to the party.", "chain"),
        _t("{C} is married to {A}'s {d1}.", "chain", kinds=[None, ["spouse"]]),
        _t("{X} and {Z} made a cake for {X+Z.their} {d1}.", "list"),
    ),
    # ---- held-out families ---------------------------------------------------------
    _family(
        "records",
        _t("According to the family records, {S} is the {w} of {O}."),
        _t("{O} introduced {S} to everyone as {O.his} {w}."),
        _t("Records show that {O}'s {w} is {S}."),
        _t("{S} signed the form as {O}'s {w}."),
    ),
    _family(
        "anecdote",
        _t("{O} forgot {O.his} keys again. Luckily {O.his} {w} {S} had a spare set."),
        _t("{S} {filler}. Everyone says {S.he} takes after {S.his} {v} {O}.", kinds=[_YOUNGER]),
        _t("{O} was ill last week, so {O.his} {w} {S} looked after {O.him}."),
        _t("{O} {filler}. {S} is {aw} of {O.hers}.", kinds=[_MANY]),
        _t("{O}'s {d} baked a cake for the whole street."),
    ),
    _family(
        "family-web",
        _t("{X} and {Z} both call {M} {X+Z.their} {w1}.", "list"),
        _t("{B} is both {A}'s {w1} and {C}'s {v2}.", "chain"),
        _t("{C} is {A}'s {d1}'s {w2}.", "chain"),
        _t("{X} and {Z} adore {X+Z.their} {d1}, who {filler}.", "list"),
    ),
)
FAMILY = {f.name: f for f in FAMILIES}
CLASSIC = "classic"
#: the fixed partition of families: most templates train (variety in training is what carries over to phrasings
#: never seen); val and held-out keep their original families, so their measurements stay comparable
TRAIN_FAMILIES = (
    "classic",
    "possessive",
    "outing",
    "follow-up",
    "together",
    "marriage",
    "birth",
    "lists",
    "linked",
    "unnamed-link",
    "unnamed-relative",
    "relative-clause",
    "occasion",
    "passive",
    "pairs",
    "word-first",
    "two-sentence",
    "described",
    "two-facts",
    "copula",
    "group",
    "asides",
    "bystanders",
    "as-phrase",
    "coordinated",
    "nested",
    "of-possessor",
    "aside-antecedent",
    "shared-relative",
)
VAL_FAMILIES = ("of", "household", "gathering")
HELD_OUT_FAMILIES = ("records", "anecdote", "family-web")
PARTITIONS = {"train": TRAIN_FAMILIES, "val": VAL_FAMILIES, "held-out": HELD_OUT_FAMILIES}

#: the original generator's questions, all of which text-relations reads
CLASSIC_QUESTIONS = ("How is {T} related to {S}?", "What is {T} to {S}?")
QUESTIONS = {
    "train": (
        *CLASSIC_QUESTIONS,
        "What relation is {T} to {S}?",
        "Who is {T} to {S}?",
        "{T} is {S}'s what?",
        "What is the relationship of {T} to {S}?",
        "How does {T} relate to {S}?",
        "What relation does {T} have to {S}?",
        "Can you tell how {T} is related to {S}?",
        "Who is {T} in relation to {S}?",
        "What kin is {T} to {S}?",
        # the source first: a reader who learned only "{T} ... {S}" swaps the two in "What would {S} call {T}?"
        "For {S}, who is {T}?",
        "To {S}, what is {T}?",
        "How would {S} describe {T}?",
        "In {S}'s family, what is {T}?",
        "Seen from {S}'s side, what relation is {T}?",
    ),
    "val": ("How is {T} connected to {S}?", "What family relation is {T} to {S}?", "What would {S} call {T}?"),
    "held-out": (
        "In what way is {T} related to {S}?",
        "What is {T}'s relation to {S}?",
        "From {S}'s point of view, who is {T}?",
    ),
}

#: sentences that state no fact, placed between a story's fact sentences; {X}, {Y}: named story people (two
#: people in one sentence need not be related: "X and Y played cards" states nothing about how)
NARRATIVE = (
    "The weather was lovely that week.",
    "It rained all afternoon.",
    "Nobody remembered to buy bread.",
    "The garden was full of roses that summer.",
    "The whole family met for lunch on Sunday.",
    "{X} {filler}.",
    "{X} had a busy week.",
    "{X} is saving up for a new bicycle.",
    "{X} could not stop laughing.",
    "Everyone agreed that {X} makes the best pancakes.",
    "{X} forgot to bring the cake, again.",
    "{X} and {Y} played cards all evening.",
    "{X} asked {Y} for advice about the garden.",
    "{X} and {Y} argued about football for an hour.",
    "After dinner, {X} showed {Y} the old photo albums.",
    # capitalised words that are not people: a reader must not take every one for a name
    "{X} spent a year in Lisbon.",
    "{X} drove to Denver to see the mountains.",
    "{X} works for Northwind Foods in Boston.",
    "On Monday {X} flew to Chicago for a conference.",
    "{X} and {Y} watched Casablanca again.",
    # animals and things said with "the", which are not unnamed relatives
    "{X} forgot to feed the cat.",
    "The dog followed {X} all the way to the shop.",
    "{X} goes camping every August.",
    "In May, {X} planted a whole row of beans.",
    # places and named things drawn from pools ({place}, {thing}), in the positions stories put them: after
    # "in", "to" and "from", as subjects, before "'s" and in lists; and common nouns in a person's place
    "{X} grew up in {place} and still misses the food.",
    "Every summer the family rents a cottage near {place}.",
    "{place} was cold and grey when {X} arrived.",
    "{X} sent a postcard from {place}, with a picture of the harbour.",
    "{X} and {Y} drove from {place} to {place} in one day.",
    "{place}'s old market is where {X} buys spices.",
    "{X} has tickets for {thing} on Friday.",
    "{X} never misses {thing}, rain or shine.",
    "Nobody in {place} had heard of {thing} until {X} mentioned it.",
    "{X} fixed the roof before the storm reached {place}.",
    "The neighbour's parrot woke {X} at five again.",
    "{X} spent the afternoon arguing with a plumber.",
    "A stray kitten followed {X} home from the bakery.",
    "The old tractor broke down, and {X} had to walk.",
    "{X} baked bread for the whole street, and the baker was not pleased.",
    "The teacher praised {X}'s drawing of a lighthouse.",
    "{X} and {Y} bought a canoe in {place}.",
    "Grandma's recipe book went missing during the move to {place}.",
    "The ferry to {place} was late, so {X} read a book about {thing}.",
    "On Tuesday {X} and {Y} painted the fence green.",
)
#: capitalised words that are places, for {place} in narrative sentences
PLACES = (
    "Galway",
    "Mombasa",
    "Bergen",
    "Cusco",
    "Hobart",
    "Tbilisi",
    "Quebec",
    "Marrakesh",
    "Gdansk",
    "Cork",
    "Kyoto",
    "Dakar",
    "Tallinn",
    "Cartagena",
    "Adelaide",
    "Lyon",
    "Porto Alegre",
    "Madurai",
    "Aarhus",
    "Zanzibar",
    "Brittany",
    "Tuscany",
    "Patagonia",
    "Nova Scotia",
    "New Mexico",
    "Sicily",
    "Bavaria",
    "Montana",
    "Kerala",
    "Crete",
    "Iceland",
    "Chile",
    "Norway",
    "Ghana",
    "Peru",
    "Vermont",
    "Sardinia",
)
#: capitalised words that are named things, not people, for {thing}
THINGS = (
    "the Harvest Fair",
    "Carnival",
    "the Winter Games",
    "Hamlet",
    "the Grand Prix",
    "Easter Sunday",
    "Thanksgiving",
    "the Tour de France",
    "Swan Lake",
    "the Proms",
    "Midsummer",
    "the Boat Race",
    "the Eurovision Song Contest",
    "the Harbour Regatta",
    "Oktoberfest",
    "Romeo and Juliet",
    "Diwali",
    "Hanukkah",
)


def people_slots(text: str) -> int:
    """How many people a narrative sentence names: its ``{X}`` and ``{Y}`` slots."""
    return sum(1 for slot in _SLOT.findall(text) if _ROLE.fullmatch(slot))


def families(names: Sequence[str]) -> tuple[Family, ...]:
    return tuple(FAMILY[n] for n in names)


# ------------------------------------------------------------------------ binding


@dataclass(frozen=True)
class Binding:
    """People bound to a template's roles; ``facts`` in the template's order and orientation."""

    roles: Mapping[str, int]
    facts: tuple[Fact, ...]
    used: tuple[Fact, ...]  # the story's facts this states, as the story holds them


def orientations(fact: Fact) -> tuple[Fact, Fact]:
    a, k, r = fact
    return (a, k, r), (r, kv.INVERSE[k], a)


def _toward(fact: Fact, person: int, as_relative: bool) -> Fact:
    """``fact`` oriented so that ``person`` is its relative (or its anchor)."""
    for o in orientations(fact):
        if (o[2] if as_relative else o[0]) == person:
            return o
    raise ValueError(f"{person} is not in {fact}")


def bindings(
    template: Template,
    fact: Fact,
    partners: Sequence[Fact],
    gender: Mapping[int, str],
    unnamable: Callable[[int, tuple[Fact, ...], tuple[tuple[int, str], ...]], bool],
) -> list[Binding]:
    """Every way ``template`` can state ``fact`` (with one of ``partners`` when it states two).

    ``unnamable(person, used, via)`` says whether ``person`` may stay unnamed when ``used`` are stated
    together and the person is described as ``anchor``'s ``type`` for each ``(anchor, type)`` in ``via``
    (nothing else in the story may mention them, and no one else may fit those descriptions)."""
    found = []
    if template.shape == "one":
        candidates = [((o,), (fact,)) for o in orientations(fact)]
    else:
        candidates = []
        for other in partners:
            shared = {fact[0], fact[2]} & {other[0], other[2]}
            if len(shared) != 1:
                continue
            (m,) = shared
            if template.shape == "chain":
                for first, second in ((fact, other), (other, fact)):
                    candidates.append(((_toward(first, m, True), _toward(second, m, False)), (fact, other)))
            else:
                candidates.append(((_toward(fact, m, True), _toward(other, m, True)), (fact, other)))
    shape = SHAPES[template.shape]
    for oriented, used in candidates:
        roles: dict[str, int] = {}
        for (ra, rr), (a, _, r) in zip(shape, oriented):
            if roles.setdefault(ra, a) != a or roles.setdefault(rr, r) != r:
                break
        else:
            if len(set(roles.values())) == len(roles) and _fits(template, roles, oriented, used, gender, unnamable):
                found.append(Binding(roles, oriented, used))
    return found


def _fits(template, roles, oriented, used, gender, unnamable) -> bool:
    for allowed, (_, kind, _) in zip(template.kinds, oriented):
        if allowed is not None and kind not in allowed:
            return False
    if any(gender[roles[role]] != g for role, g in template.genders):
        return False
    if template.shape == "list":
        if oriented[0][1] != oriented[1][1]:
            return False
        if template.plural_word and plural(kv.INVERSE[oriented[0][1]], [gender[f[0]] for f in oriented]) is None:
            return False
    for role in template.unnamed:
        person = roles[role]
        if not unnamable(person, used, tuple((a, k) for a, k, r in oriented if r == person)):
            return False
    return True


# ---------------------------------------------------------------------- rendering


@dataclass
class Rendered:
    """A rendered unit: offsets are relative to ``text``; mentions and words name person ids."""

    text: str
    mentions: list[tuple[int, int, tuple[int, ...], str]]  # (start, end, people, kind)
    facts: list[Fact]
    words: list[tuple[str, tuple[int, ...]]]  # every relation word and the people it describes


def _article(word: str) -> str:
    return "an " if word[0] in "aeiou" else "a "


def render(
    template: Template,
    binding: Binding,
    names: Mapping[int, str],
    gender: Mapping[int, str],
    rng: random.Random,
    filler: str | None = None,
    vary: bool = False,
) -> Rendered:
    """Fill ``template`` with ``binding``'s people; draws one filler from ``rng`` (always, even when unused);
    ``vary``: relation words vary as :func:`relation_word` says."""
    filler = rng.choice(FILLERS) if filler is None else filler
    roles, facts = binding.roles, binding.facts
    out = Rendered("", [], list(facts), [])
    pieces: list[str] = []
    position = 0

    def emit(text: str, people: tuple[int, ...] = (), kind: str | None = None) -> None:
        nonlocal position
        if kind is not None:
            out.mentions.append((position, position + len(text), people, kind))
        pieces.append(text)
        position += len(text)

    last = 0
    for m in _SLOT.finditer(template.text):
        emit(template.text[last : m.start()])
        last = m.end()
        slot = m[1]
        if slot == "filler":
            emit(filler)
            continue
        if slot == "vs":
            anchors = tuple(f[0] for f in facts)
            word = plural(kv.INVERSE[facts[0][1]], [gender[p] for p in anchors])
            out.words.append((word, anchors))
            emit(word)
            continue
        word = _WORD.fullmatch(slot)
        if word:
            anchor, kind, relative = facts[int(word[3] or 1) - 1]
            person, kind = (anchor, kv.INVERSE[kind]) if word[2] == "v" else (relative, kind)
            adjective, text = relation_word(kind, gender[person], rng if vary else None)
            if pieces and pieces[-1].endswith((" a ", "baby ")):  # the template wrote an article: "has a {w}"
                adjective = ""
            out.words.append((text, (person,)))
            if word[1]:
                emit(_article(adjective or text))
            if adjective:
                emit(adjective + " ")
            emit(text, (person,), "description" if word[2] == "d" else None)
            continue
        role, _, form = slot.partition(".")
        people = tuple(roles[r] for r in role.split("+"))
        if not form:
            emit(names[people[0]], people, "name")
            continue
        lower = form.lower()
        text = lower if len(people) > 1 else SINGULAR_PRONOUNS[lower][gender[people[0]] == kv.MALE]
        emit(text[0].upper() + text[1:] if form[0].isupper() else text, people, "pronoun")
    emit(template.text[last:])
    out.text = "".join(pieces)
    return out


def fill(text: str, people: Mapping[str, int], names: Mapping[int, str], rng: random.Random) -> Rendered:
    """A sentence that states no fact (a question, a narrative filler): ``{T}``, ``{X}``, ... are names of
    ``people``; ``{filler}`` draws an activity from ``rng``, ``{place}`` and ``{thing}`` a place or a named
    thing."""
    pieces: list[str] = []
    mentions: list[tuple[int, int, tuple[int, ...], str]] = []
    position = last = 0
    for m in _SLOT.finditer(text):
        literal = text[last : m.start()]
        last = m.end()
        if m[1] == "filler":
            value, mention = rng.choice(FILLERS), None
        elif m[1] in ("place", "thing"):
            value, mention = rng.choice(PLACES if m[1] == "place" else THINGS), None
            if not ("".join(pieces) + literal).strip():
                value = value[0].upper() + value[1:]  # "The Harvest Fair" at a sentence start
        else:
            value, mention = names[people[m[1]]], (people[m[1]],)
        pieces.append(literal)
        position += len(literal)
        if mention:
            mentions.append((position, position + len(value), mention, "name"))
        pieces.append(value)
        position += len(value)
    pieces.append(text[last:])
    return Rendered("".join(pieces), mentions, [], [])
