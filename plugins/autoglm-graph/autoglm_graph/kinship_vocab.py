"""The kinship domain: relation types, their gendered words, the composition
rule table and a given-name lexicon. Pure Python (no torch): the generator, the
``text-relations`` builder's default configuration and the oracle share it.

Relations are *ungendered* types read as "Y is X's <type>"; the gender of the
word comes from Y. ``compose(a, b)`` is the state of "X's a's b" in a family
tree where siblings share both parents, everyone has at most one spouse,
children belong to a couple and no person is visited twice; ``None`` where the
answer is ambiguous (a grandparent's child is a parent or an aunt) or outside
the vocabulary (a great-aunt). A state is a type, or one of ``CHAIN_STATES``
that answers as a type (``reads_as``) but composes further, as people do: a
husband's brother's son is a nephew, a father's sister's sister an aunt.
"""

from __future__ import annotations

FEMALE, MALE = "female", "male"

#: type -> (female word, male word)
WORDS: dict[str, tuple[str, str]] = {
    "parent": ("mother", "father"),
    "child": ("daughter", "son"),
    "sibling": ("sister", "brother"),
    "spouse": ("wife", "husband"),
    "grandparent": ("grandmother", "grandfather"),
    "grandchild": ("granddaughter", "grandson"),
    "pibling": ("aunt", "uncle"),
    "nibling": ("niece", "nephew"),
    "parent_in_law": ("mother-in-law", "father-in-law"),
    "child_in_law": ("daughter-in-law", "son-in-law"),
    "sibling_in_law": ("sister-in-law", "brother-in-law"),
}
TYPES = tuple(WORDS)
INVERSE = {
    "parent": "child",
    "child": "parent",
    "sibling": "sibling",
    "spouse": "spouse",
    "grandparent": "grandchild",
    "grandchild": "grandparent",
    "pibling": "nibling",
    "nibling": "pibling",
    "parent_in_law": "child_in_law",
    "child_in_law": "parent_in_law",
    "sibling_in_law": "sibling_in_law",
}
#: the 22 answer classes, in a fixed order
LABELS = tuple(word for pair in WORDS.values() for word in pair)
#: everyday words for the same relatives, type -> (female words, male words): the phrasing bank uses them now
#: and then (classic stories never do), and text-relations reads them. People write "her hubby" and "my sis" as
#: often as "mom"; an uncle has no everyday word, so he stays an uncle
INFORMAL_WORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "parent": (("mom", "mum", "mama", "mommy"), ("dad", "daddy", "papa", "pops")),
    "grandparent": (("grandma", "granny", "nana", "gran"), ("grandpa", "granddad", "grandad", "gramps")),
    "spouse": (("missus",), ("hubby",)),
    "sibling": (("sis",), ("bro",)),
    "pibling": (("auntie",), ("uncle",)),
}
#: word -> (type, gender of the person the word describes)
WORD_MEANING = {
    **{word: (kind, (FEMALE, MALE)[i]) for kind, pair in WORDS.items() for i, word in enumerate(pair)},
    **{w: (kind, (FEMALE, MALE)[i]) for kind, pair in INFORMAL_WORDS.items() for i, ws in enumerate(pair) for w in ws},
}


def word_for(kind: str, gender: str) -> str:
    return WORDS[kind][0 if gender == FEMALE else 1]


#: states a chain passes through that read as a vocabulary type but compose further than it: "X's spouse's
#: sibling" and "X's sibling's spouse" are both X's sister-in-law, yet only the first one's sister is one too;
#: "X's parent's sibling" is X's aunt, and so is her sister, but an aunt named as such may be the sister of X's
#: mother. State -> the type it reads as
CHAIN_STATES = {"spouse_sibling": "sibling_in_law", "sibling_spouse": "sibling_in_law", "parent_sibling": "pibling"}

_RULES = {
    "parent": {"parent": "grandparent", "child": "sibling", "sibling": "parent_sibling", "spouse": "parent"},
    "child": {
        "parent": "spouse",
        "child": "grandchild",
        "sibling": "child",
        "spouse": "child_in_law",
        "nibling": "grandchild",
    },
    "sibling": {
        "parent": "parent",
        "child": "nibling",
        "sibling": "sibling",
        "spouse": "sibling_spouse",
        "grandparent": "grandparent",
        "pibling": "pibling",
    },
    "spouse": {
        "parent": "parent_in_law",
        "child": "child",
        "sibling": "spouse_sibling",
        "grandchild": "grandchild",
        "parent_in_law": "parent",
        "child_in_law": "child_in_law",
    },
    "grandparent": {"spouse": "grandparent"},
    "grandchild": {"sibling": "grandchild"},
    # an uncle's wife is an aunt and an aunt's husband an uncle; a pibling's parent is a grandparent only by
    # blood, so it is left out
    "pibling": {"spouse": "pibling"},
    # the sibling of a parent's sibling is another one (the parent is already on the chain)
    "parent_sibling": {"sibling": "parent_sibling", "spouse": "pibling"},
    # a niece's or nephew's siblings are too, whether by blood or by marriage
    "nibling": {"sibling": "nibling"},
    "parent_in_law": {"spouse": "parent_in_law"},
    "child_in_law": {"child": "grandchild", "spouse": "child"},
    # a sister-in-law's child is a niece or nephew either way (a sibling's or a spouse's sibling's child);
    # after her, nothing else composes: her sibling may be X's spouse, her parent not X's at all
    "sibling_in_law": {"child": "nibling"},
    # the spouse is on the chain, so the spouse's sibling's sibling is another sibling-in-law, and their parent
    # the spouse's parent
    "spouse_sibling": {"sibling": "spouse_sibling", "child": "nibling", "parent": "parent_in_law"},
    "sibling_spouse": {"child": "nibling"},
}


def compose(a: str, b: str) -> str | None:
    """State of "X's a's b" (a vocabulary type or one of ``CHAIN_STATES``), or None when ambiguous or outside
    the vocabulary."""
    if a == "self":
        return b
    return _RULES[a].get(b)


def reads_as(state: str) -> str:
    """The vocabulary type a composed state answers as."""
    return CHAIN_STATES.get(state, state)


# Given names with a conventional gender, for the generator and for the
# builder's gender lexicon. A name missing here is still parsed; its gender then
# comes from relation words or pronouns.
FEMALE_NAMES = tuple(
    """Abigail Ada Agnes Alice Amelia Anna Beatrice Bella Bianca Camille Carla Carmen Caroline Charlotte Chloe Clara
    Daisy Dana Diana Dora Edith Elena Eliza Ella Elsa Emily Emma Erin Esther Eva Fatima Fiona Flora Freya Gemma Gina
    Grace Greta Hannah Hazel Helen Ida Ines Irene Iris Isabel Ivy Jane Jasmine Jenna Joan Julia June Karen Kate Kira
    Laura Leah Lena Lily Linda Lisa Lucia Lucy Mabel Maya Megan Mia Mila Mira Molly Nadia Naomi Nina Nora Olga Olivia
    Paula Petra Phoebe Pia Priya Rachel Rita Rosa Ruby Ruth Sara Selma Sofia Stella Susan Tamara Tess Thea Tina Uma
    Vera Viola Wendy Yara Yasmin Zara Zoe""".split()
)
MALE_NAMES = tuple(
    """Aaron Adam Ahmed Alan Albert Alex Andre Arthur Ben Bruno Carl Carlos Cedric Chris Colin Daniel David Dmitri
    Edgar Edward Elias Emil Eric Erik Felix Finn Frank Gabriel George Gustav Hans Harry Hassan Henry Hugo Ian Igor
    Isaac Ivan Jack Jacob James Jasper Jonas Jorge Joseph Julian Karl Kevin Leo Leon Liam Louis Luca Lukas Marco
    Mark Martin Max Mikhail Milo Nathan Neil Nico Noah Olaf Oliver Omar Oscar Otto Owen Pablo Patrick Paul Pedro
    Peter Philip Rafael Ravi Robert Roman Rudy Samuel Sean Simon Stefan Theo Thomas Tim Tobias Tom Victor Viktor
    Walter Will Xavier Yusuf Zach""".split()
)
#: family names for the generator's people where ``surnames`` asks (a story names each person in full once:
#: "Rosa Delgado's son", then "Rosa"): people write full names in notes, letters and obituaries, and a reader that
#: never saw one takes the surname for a person of its own. None is a given name or a place above
SURNAMES = tuple(
    """Abara Alvarez Andersson Baptiste Barros Bauer Brennan Castillo Chowdhury Costa Dimitriou Dubois Eriksen
    Fitzgerald Fonseca Gallagher Haddad Hoffmann Ibrahim Iyer Jovanovic Kamau Kaplan Kealoha Kowalski Lindgren
    Lombardi MacLeod Marchetti Moreau Mwangi Nakamura Novak Nwosu Oyelaran Park Petrov Quispe Rahman Reyes Rossi
    Sandoval Schneider Sorensen Tanaka Thornton Tshabalala Ueda Varga Whitfield Wojcik Yilmaz Zapata Ferreira
    Hakimi Bergstrom Achterberg Okonjo Szabo Delacroix""".split()
)
