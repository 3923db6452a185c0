"""``relation-extractor``: raw text -> a semantic graph, learned from labelled stories.

One transformer encoder (transformers; random init from a config, a local
checkpoint, or the packaged all-MiniLM-L6-v2) reads the story in windows of
whole sentences (``encoding = "sentences"``: each sentence as if alone), with an
embedding of each token's letter case added, since an uncased encoder cannot
see that names are capitalised. Five small heads read its token states:

* **mentions**: a BIO tagger finds person mentions: names, pronouns and
  descriptions of unnamed people (the "father" of "their father");
* **kind**: each mention is a name, a singular or plural pronoun, or a description;
* **coreference**: a mention scores each earlier mention as the same person (a
  plural pronoun: as one of its people). Equal names always merge; a pronoun
  joins its best antecedent; a description starts a person of its own unless
  it refers back; a plural pronoun stands for every antecedent it links to;
* **relations**: every ordered pair of mentions in one sentence gets a relation
  class ("tail is head's <type>", the reverse, or none); pairs become people
  pairs through coreference, so a fact stated with pronouns or across
  sentences ends on the right people;
* **attributes** (gender for kinship) per person, and the **question's** source
  and target among the mentions of the question sentence.

The relation inventory, its inverses and the attribute values come from the
manifest and the data, never from a domain's code. Training (``fit``) reads
gold ``mentions``, ``entities`` and ``facts`` from the samples (the kinship
generator writes them; the ``jsonl`` source passes a user's own), before the
pipeline trains; the extractor is then frozen, so each story is read once per
build (capability ``cacheable``).

With ``members`` above 1, that many extractors train from different seeds and
read together: every head's probabilities are their mean (an ensemble), while
decoding (spans, people, facts) happens once, on the means.

The graph is the one ``text-relations`` makes: people as nodes with features
``[attribute one-hot..., unknown, is_source, is_target]``, typed directed edges
``head -> tail`` (with their reverse), each edge's confidence in ``edge_attr``
and the sentence it came from for explanations.
"""

from __future__ import annotations

import json
import re
import time
import zlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Callable

import torch
from tokenizers import Tokenizer
from torch import nn
from torch.nn import functional as F

from autoglm_sdk.plugin import (
    ArtifactError,
    AutoGLMError,
    BuildContext,
    DataError,
    Dataset,
    InputError,
    SemanticGraph,
    cpu_bf16,
    stage_seed,
)
from autoglm_text.bert import load_checkpoint, train_wordpiece
from autoglm_text.extraction import Extraction, fact_scores, word_pairs
from autoglm_text.narration import in_third_person
from autoglm_text.specs import RelationExtractorConfig, complete_inverse, relation_classes
from autoglm_text.stories import (
    CASES,
    HONORIFICS,
    KINDS,
    PLURAL_PRONOUNS,
    PRONOUN_REACH,
    PRONOUNS,
    Mention,
    Story,
    after_possessive,
    possessive_ending,
    sentence_spans,
    surface,
    token_cases,
    whole_word,
    with_asides,
    with_bystanders,
    with_joins,
    with_names,
    with_openings,
    with_rewordings,
    with_verbs,
)

TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "encoder_config.json"
FIT_FILE = "fit_report.json"
#: how this extractor's heads read the text, for artifacts built before a change to it (absent: the first way)
READS_FILE = "reads.json"
WORDS_FILE = "word_types.json"  # word -> the relation type it says, or null (absent: none learned)
# how this version reads a story (encoding and case: as the config says); an artifact keeps the reads it was
# trained with (reads.json)
READS = {"word_after": "whole_words"}
NONE = 0  # relation class "no relation"
ENCODE_TOKENS = 8192  # tokens (padding included) the encoder reads in one call


class RelationExtractor(nn.Module):
    name = "relation-extractor"
    kind = "graph_builder"
    Config = RelationExtractorConfig

    def __init__(self, config: RelationExtractorConfig, ctx: BuildContext) -> None:
        super().__init__()
        self.config = config
        port = ctx.input
        self.edge_types = list(config.edge_types or port.edge_type_names)
        self.classes = relation_classes(self.edge_types, config.inverse)  # none, types, reverse types
        self.reverse = {c: self._reverse_class(c) for c in range(1, len(self.classes))}
        self.graph_types = self.classes[1:]  # edge types of the graph: every class but none
        self.attribute_values = list(config.attribute_values)
        self.init_seed = stage_seed(ctx)
        # ensemble members (members > 1): extractors of their own, made by fit or from an artifact's files
        self.others = nn.ModuleList()
        self._member_context = BuildContext(inputs={"data": port}, seed=ctx.seed, device=ctx.device, stage=ctx.stage)
        self.encoder: nn.Module | None = None
        self.tokenizer: Tokenizer | None = None
        self.source = "untrained"
        self.fit_report: dict[str, Any] = {}
        self.word_types: dict[str, int] = {}  # see _learn_word_types
        self.reads = {**READS, "encoding": config.encoding, "case": "embedding" if config.letter_case else "none"}
        self.stats = {"texts": 0, "people": 0, "facts": 0, "texts_with_problems": 0, "second_looks": 0}
        self.register_buffer("_anchor", torch.empty(0), persistent=False)
        self.pipeline_training = False
        # a class read the other way round, as an index: probs[reverse_index] are the reverse pair's probabilities
        self.reverse_index = [NONE, *(self.reverse[c] for c in range(1, len(self.classes)))]
        # text -> (its extraction before relations, each reader's relation features, the mention pairs)
        self._read_once: dict[str, tuple[Extraction, list[torch.Tensor] | None, list[tuple[int, int]]]] = {}
        self._bf16 = False  # the encoder runs under bfloat16 autocast (while training, where chosen)

    def _reverse_class(self, c: int) -> int:
        name = self.classes[c]
        if name.startswith("~"):
            return self.classes.index(name[1:])
        inverse = complete_inverse(self.config.inverse).get(name)
        return self.classes.index(inverse) if inverse else self.classes.index("~" + name)

    # ------------------------------------------------------------------ model

    def _heads(self, hidden: int) -> None:
        d = self.config.head_size
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.init_seed + 1)
            self.tagger = nn.Linear(hidden, 3)  # O, B, I
            self.span = nn.Sequential(nn.Linear(3 * hidden, d), nn.GELU(), nn.LayerNorm(d))
            self.kind_head = nn.Linear(d, len(KINDS))
            self.distance = nn.Embedding(8, 16)
            # which of a pair's mentions comes first: "Theo has a son, Viktor" and "Viktor is Theo's son" differ
            # in little else, and a distance without its sign cannot tell a relation from its reverse
            self.order = nn.Embedding(2, 16)
            self.coref = nn.Sequential(nn.Linear(3 * d + 16 + 1, d), nn.GELU(), nn.Linear(d, 1))
            self.context = nn.Linear(hidden, d)
            self.pair_keys = nn.Linear(hidden, d)
            self.pair_query = nn.Linear(2 * d, d)
            # the words just before and after each mention ("Eva's" before "father", "is" after "Robert" in
            # "Robert is") say which of the two a relation word belongs to; after a possessive, the word after
            # it ("son" in "Omar's son-in-law", not the apostrophe)
            self.edges = nn.Linear(2 * hidden, d)
            self.relation = nn.Sequential(
                nn.Linear(7 * d + 16, 2 * d), nn.GELU(), nn.Dropout(0.1), nn.Linear(2 * d, len(self.classes))
            )
            self.attribute = nn.Linear(d, max(len(self.attribute_values), 1))
            self.role = nn.Linear(d, 3)  # not in the query, target, source
            # the tail's attribute as the words around a related pair say it ("Halima's father, Ibrahim":
            # male), read without the two mentions themselves: a name may suggest the wrong value ("Sani")
            self.word_attribute = nn.Linear(4 * d + 16, max(len(self.attribute_values), 1))
            if self.reads.get("case") == "embedding":
                # an uncased encoder (all-MiniLM-L6-v2 lower-cases its input) cannot tell a name from a word
                # ("Joan and Igor adore their sister": "adore" was read as a person); zero at first, so a
                # pretrained encoder's states start as they were
                self.case = nn.Embedding(len(CASES), hidden)
                nn.init.zeros_(self.case.weight)
            elif hasattr(self, "case"):  # heads made again for an artifact that reads no case
                del self.case

    def _install(self, encoder: nn.Module, tokenizer: Tokenizer, source: str) -> None:
        tokenizer.no_padding()
        tokenizer.no_truncation()
        self.encoder, self.tokenizer, self.source = encoder, tokenizer, source
        self.max_tokens = min(self.config.max_length, int(encoder.config.max_position_embeddings)) - 2
        self.cls_id = tokenizer.token_to_id("[CLS]")
        self.sep_id = tokenizer.token_to_id("[SEP]")
        self.pad_id = tokenizer.token_to_id("[PAD]") or 0
        self._heads(int(encoder.config.hidden_size))
        self.to(self._anchor.device)

    def _new_encoder(self, tokenizer: Tokenizer) -> nn.Module:
        from transformers import BertConfig, BertModel

        c = self.config
        config = BertConfig(
            vocab_size=tokenizer.get_vocab_size(),
            hidden_size=c.hidden_size,
            num_hidden_layers=c.num_layers,
            num_attention_heads=c.num_heads,
            intermediate_size=4 * c.hidden_size,
            max_position_embeddings=c.max_length,
            pad_token_id=tokenizer.token_to_id("[PAD]"),
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.init_seed)
            return BertModel(config, add_pooling_layer=False)

    def _require(self) -> None:
        if self.encoder is None:
            raise AutoGLMError("relation-extractor: not trained yet; build a pipeline (fit) or load an artifact first")

    # --------------------------------------------------------------- reading

    def read(self, text: str, gold: Mapping[str, Any] | None = None) -> Story:
        """Tokenize ``text`` and cut it into windows of whole sentences; with ``gold``, attach gold mentions.
        Without, a story told by a named narrator is read in the third person (``first_person``)."""
        said = text
        if gold is None and self.config.first_person:
            text = in_third_person(text, tuple(self.config.titles))
        encoding = self.tokenizer.encode(text, add_special_tokens=False)
        sentences = sentence_spans(text) or [(0, len(text))]
        ids, offsets = list(encoding.ids), [tuple(o) for o in encoding.offsets]
        token_sentence, s = [], 0
        for start, _ in offsets:
            while s + 1 < len(sentences) and start >= sentences[s + 1][0]:
                s += 1
            token_sentence.append(s)
        windows, begin = [], 0
        while begin < len(ids):
            end = min(begin + self.max_tokens, len(ids))
            if end < len(ids):  # end the window at a sentence boundary when one fits
                cut = max(
                    (i for i in range(begin + 1, end + 1) if token_sentence[i] != token_sentence[i - 1]), default=end
                )
                end = cut
            windows.append((begin, end))
            begin = end
        story = Story(text, ids, offsets, token_sentence, sentences, windows, said=said if said != text else None)
        if gold is not None:
            story.gold = dict(gold)
            story.gold["values"], story.gold["conflicts"] = self._word_values(gold)
            for m in gold.get("mentions", ()):
                mention = self._mention(story, int(m["start"]), int(m["end"]))
                if mention is not None:
                    mention.kind = self._gold_kind(m, text)
                    mention.entities = tuple(int(e) for e in m["entities"])
                    story.mentions.append(mention)
        return story

    def _word_values(self, gold: Mapping[str, Any]) -> tuple[dict[int, str], int]:
        """Each person's attribute value, given or revealed by a fact's relation word about its tail, and how
        many people got two different values (a fact written the wrong way round shows up this way)."""
        values: dict[int, str] = {}
        for e, entity in enumerate(gold.get("entities") or ()):
            if entity.get(self.config.attribute) in self.attribute_values:
                values[e] = entity[self.config.attribute]
        conflicts = set()
        for _, relation, tail in gold.get("facts", ()):
            word = self.config.relation_words.get(relation)
            if word is None or word.value is None:
                continue
            if values.setdefault(int(tail), word.value) != word.value:
                conflicts.add(int(tail))
        return values, len(conflicts)

    def _mention(self, story: Story, start: int, end: int) -> Mention | None:
        tokens = [i for i, (a, b) in enumerate(story.offsets) if a < end and b > start]
        if not tokens:
            return None
        return Mention(start, end, tokens[0], tokens[-1] + 1, story.token_sentence[tokens[0]])

    @staticmethod
    def _gold_kind(m: Mapping[str, Any], text: str) -> int:
        kind = m.get("kind", "name")
        if kind == "pronoun":
            surface = text[int(m["start"]) : int(m["end"])].lower()
            return KINDS.index("plural" if surface in PLURAL_PRONOUNS or len(m["entities"]) > 1 else "pronoun")
        return KINDS.index(kind if kind in KINDS else "name")

    def encode(self, stories: list[Story]) -> list[torch.Tensor]:
        """Token states of each story ``[tokens, hidden]``, its windows encoded in one padded batch."""
        rows, owners, sentences = [], [], []
        for i, story in enumerate(stories):
            for begin, end in story.windows:
                rows.append([self.cls_id, *story.ids[begin:end], self.sep_id])
                owners.append(i)
                sentences.append([-1, *story.token_sentence[begin:end], -1])
        device, hidden = self._anchor.device, self.encoder.config.hidden_size
        # rows of similar length go together, so that short sentences are not padded to the longest window
        order = sorted(range(len(rows)), key=lambda r: len(rows[r]))
        states: list[torch.Tensor | None] = [None] * len(rows)
        begin = 0
        while begin < len(order):
            end = begin + 1
            while end < len(order) and (end - begin + 1) * len(rows[order[end]]) <= ENCODE_TOKENS:
                end += 1
            chunk = [rows[r] for r in order[begin:end]]
            width = len(chunk[-1])
            ids = torch.tensor([r + [self.pad_id] * (width - len(r)) for r in chunk], device=device)
            inputs: dict[str, torch.Tensor] = {"input_ids": ids}
            if self.reads.get("encoding") == "sentences":
                mask, positions = self._sentence_masks([sentences[r] for r in order[begin:end]], width)
                inputs.update(attention_mask=mask, position_ids=positions)
            else:
                inputs["attention_mask"] = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in chunk])
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self._bf16):
                encoded = self.encoder(**{k: v.to(device) for k, v in inputs.items()}).last_hidden_state.float()
            for k, r in enumerate(order[begin:end]):
                states[r] = encoded[k, 1 : len(rows[r]) - 1]
            begin = end
        out: list[list[torch.Tensor]] = [[] for _ in stories]
        for owner, state in zip(owners, states):
            out[owner].append(state)
        joined = [torch.cat(parts) if parts else torch.zeros(0, hidden, device=device) for parts in out]
        if self.reads.get("case") == "embedding":
            joined = [h + self.case(torch.tensor(token_cases(s), device=device)) for s, h in zip(stories, joined)]
        return joined

    def _sentence_masks(self, sentences: list[list[int]], width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Additive attention masks ``[rows, 1, width, width]`` and position ids ``[rows, width]`` that encode each
        sentence of a window as if alone, at the cost of the window: a token sees its own sentence and the window's
        [CLS] and [SEP] (sentence -1, which see only each other), and positions restart at every sentence.

        Why: read together, a sentence's words took on what an earlier sentence said about the same person
        ("Lukas is Freya's father-in-law. Ben is both Freya's son and Lily's brother": Ben became Freya's
        sibling), and positions beyond the lengths of training stories were never trained."""
        device = self._anchor.device
        which = torch.tensor([row + [-2] * (width - len(row)) for row in sentences], device=device)  # -2: padding
        special = which == -1
        seen = (which[:, :, None] == which[:, None, :]) | special[:, None, :]
        mask = torch.zeros(seen.shape, device=device).masked_fill(~seen, torch.finfo(torch.float32).min)
        # [SEP] sits at the last position, whatever the sentences' lengths, so that no sentence sees another's
        positions = torch.zeros_like(which)
        for r, row in enumerate(sentences):
            k, last = 0, None
            for t, sentence in enumerate(row[1:-1], start=1):
                k = k + 1 if sentence == last else 1
                positions[r, t], last = k, sentence
            positions[r, len(row) - 1] = self.max_tokens + 1
        return mask[:, None], positions

    def spans(self, states: torch.Tensor, mentions: list[Mention]) -> torch.Tensor:
        first = torch.stack([states[m.first] for m in mentions])
        last = torch.stack([states[m.last - 1] for m in mentions])
        mean = torch.stack([states[m.first : m.last].mean(0) for m in mentions])
        return self.span(torch.cat([first, last, mean], -1))

    def _pairs_in_sentences(self, mentions: list[Mention]) -> list[tuple[int, int]]:
        return [
            (i, j)
            for i, a in enumerate(mentions)
            for j, b in enumerate(mentions)
            if i != j and a.sentence == b.sentence
        ]

    def relation_logits(
        self, story: Story, states: torch.Tensor, reps: torch.Tensor, pairs: list[tuple[int, int]]
    ) -> torch.Tensor:
        """Relation class logits of ordered mention pairs ``(head, tail)`` of one sentence."""
        return self.relation(self.relation_features(story, states, reps, pairs))

    def word_attribute_logits(self, features: torch.Tensor) -> torch.Tensor:
        """Each pair's tail attribute from its :meth:`relation_features` less the two mentions' own spans."""
        return self.word_attribute(features[:, 3 * self.config.head_size :])

    def relation_features(
        self, story: Story, states: torch.Tensor, reps: torch.Tensor, pairs: list[tuple[int, int]]
    ) -> torch.Tensor:
        """What the relation classifier reads of each ordered mention pair. Besides the two
        mentions, each pair reads the words between them and its own attention over the whole sentence, so a
        relation word before, between or after the two people ("Tom, Anna's father") is found wherever it is."""
        mentions = story.mentions
        context = self.context(states)
        keys = self.pair_keys(states)
        heads = torch.tensor([i for i, _ in pairs], device=reps.device)
        tails = torch.tensor([j for _, j in pairs], device=reps.device)
        h, t = reps[heads], reps[tails]
        queries = self.pair_query(torch.cat([h, t], -1))
        between, attended = [], []
        bounds: dict[int, tuple[int, int]] = {}
        for k, s in enumerate(story.token_sentence):
            lo, hi = bounds.get(s, (k, k))
            bounds[s] = (min(lo, k), k + 1)
        for n, (i, j) in enumerate(pairs):
            a, b = mentions[i], mentions[j]
            lo, hi = min(a.last, b.last), max(a.first, b.first)
            lo, hi = (lo, hi) if hi > lo else (min(a.first, b.first), max(a.last, b.last))
            between.append(context[lo:hi].max(0).values)
            s_lo, s_hi = bounds[a.sentence]
            weights = (keys[s_lo:s_hi] @ queries[n] / keys.size(-1) ** 0.5).softmax(0)
            attended.append(weights @ context[s_lo:s_hi])
        gap = torch.tensor([_bucket(mentions[j].first - mentions[i].first) for i, j in pairs], device=reps.device)
        order = torch.tensor([int(mentions[j].first < mentions[i].first) for i, j in pairs], device=reps.device)
        where = self.distance(gap) + self.order(order)
        around = self.edges(torch.cat(self._words_around(story, states), -1))
        features = [h, t, h * t, torch.stack(between), torch.stack(attended), where, around[heads], around[tails]]
        return torch.cat(features, -1)

    def _words_around(self, story: Story, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The states of the word just before and just after each mention ``[mentions, hidden]`` each, as
        ``reads["word_after"]`` says: ``whole_words``, the mean over the whole word, hyphenated compounds
        included, and after a possessive the word after its ending; ``after_possessive``, that word's first token;
        otherwise the first token after the mention, apostrophe or not. Why whole words: "Pablo is both Carmen's
        father-in-law and Ruby's father" read Carmen's word as "father", its first token, and held-out stories'
        in-laws became parents and children (33 of 58 misread held-out fact types, seed 0, 2026-12-06)."""
        mentions, way = story.mentions, self.reads.get("word_after")
        if way != "whole_words":
            before = states[[max(m.first - 1, 0) for m in mentions]]
            if way == "after_possessive":
                return before, states[[after_possessive(story, m.last) for m in mentions]]
            return before, states[[min(m.last, states.size(0) - 1) for m in mentions]]

        def mean(span: tuple[int, int]) -> torch.Tensor:
            return states[span[0] : span[1]].mean(0)

        before = [mean(whole_word(story, m.first - 1, -1)) if m.first else states[0] for m in mentions]
        after = [after_possessive(story, m.last) for m in mentions]
        after = [mean(whole_word(story, k, 1)) if k >= m.last else states[k] for k, m in zip(after, mentions)]
        return torch.stack(before), torch.stack(after)

    def coref_logits(self, story: Story, reps: torch.Tensor) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        """Scores of (mention, earlier mention) pairs within ``coref_window`` mentions: same person. A pronoun
        looks back at most ``PRONOUN_REACH`` sentences (a plural one, one): "they" is the group just named."""
        mentions, pairs = story.mentions, []
        for j, m in enumerate(mentions):
            reach = PRONOUN_REACH.get(KINDS[m.kind])
            for i in range(max(0, j - self.config.coref_window), j):
                if reach is None or m.sentence - mentions[i].sentence <= reach:
                    pairs.append((j, i))
        if not pairs:
            return reps.new_zeros(0), pairs
        later = torch.tensor([j for j, _ in pairs], device=reps.device)
        earlier = torch.tensor([i for _, i in pairs], device=reps.device)
        gap = torch.tensor([_bucket(j - i) for j, i in pairs], device=reps.device)
        same = torch.tensor([[float(surface(story, j) == surface(story, i))] for j, i in pairs], device=reps.device)
        a, b = reps[later], reps[earlier]
        return self.coref(torch.cat([a, b, a * b, self.distance(gap), same], -1)).squeeze(-1), pairs

    # -------------------------------------------------------------- training

    def fit(self, dataset: Dataset, log: Callable[[str], None] | None = None) -> None:
        """Train the encoder and heads on the training split's gold mentions and facts, from scratch or from
        ``init_from``'s extractor; with no annotated story, ``init_from``'s extractor as it is."""
        log = log or (lambda message: None)
        train = [s for s in dataset.splits.get("train") or [] if isinstance(s, Mapping) and s.get("mentions")]
        few = self.config.train_min_facts
        if few > 1 and train:
            train = [s for s in train if len(s.get("facts") or ()) >= few]
            if not train:
                raise DataError(
                    f"relation-extractor: no annotated training story states {few} or more facts",
                    hint="lower graph_builder.train_min_facts, or give stories that state more facts",
                )
        started = None  # the artifact init_from names, loaded
        if self.config.init_from:
            started = self._start_from(self.config.init_from)
            log(f"relation-extractor: starts from the extractor of {self.config.init_from}")
            if "members" in self.config.model_fields_set and self.config.members != len(self.readers):
                raise DataError(
                    f"relation-extractor: the extractor of {self.config.init_from} has {len(self.readers)} "
                    f"member(s), and graph_builder.members asks for {self.config.members}",
                    hint="leave graph_builder.members out: an extractor started from an artifact keeps its members",
                )
        if self.config.init_from and (not train or self.config.epochs == 0):
            why = "epochs = 0" if train else "no training story carries facts"
            log(f"relation-extractor: {why}; the extractor keeps what it had learned")
        elif not train:
            raise DataError(
                "relation-extractor: no training story carries `mentions` and `facts`",
                hint="use the kinship generator, give jsonl stories with facts (see the README), or start from an "
                "extractor an earlier build trained: graph_builder.init_from = 'ARTIFACT'",
            )
        else:
            train = train[: self.config.train_stories]
            if self.config.init_from and self.config.mark_pronouns:
                train = self._pronouns_marked(train, log)
            if self.config.init_from and self.config.rehearse:
                train = train + self._rehearsal(started, self.config.init_from, log)
            self._fit_facts(dataset, train, log)
            self._fit_members(dataset, train, log)
        for p in self.parameters():  # frozen from here: the pipeline trains on what it extracts
            p.requires_grad_(False)
        if self.config.learn_from_answers:  # ... except the relation classifiers, which the answers teach
            for reader in self.readers:
                reader.relation.requires_grad_(True)

    def _pronouns_marked(self, train: list[Mapping[str, Any]], log: Callable[[str], None]) -> list[Mapping[str, Any]]:
        """``train`` with the pronouns of its partial annotations marked as this extractor reads them.

        A user's facts name people, so a jsonl story's annotation marks names and leaves pronouns unmarked (their
        tags are not trained). Trained on such stories alone, the heads see no pronoun for whole epochs and forget
        them, and a fact a pronoun states ("Lukas is a son of hers") teaches nothing: on held-out phrasing
        families, 1,564 such stories took held-out answers from 0.81 to 0.63 (benchmarks/new_phrasings.py).
        A pronoun read as standing for annotated people becomes their mention; one read as anyone else stays
        unmarked."""
        partial = [k for k, s in enumerate(train) if s.get("partial")]
        if not partial:
            return train
        before, marked, out = dict(self.stats), 0, list(train)
        for k, extraction in zip(partial, self.extract_batch([train[k]["text"] for k in partial])):
            out[k], added = with_read_pronouns(train[k], extraction)
            marked += added
        self.stats = before  # reading to train is not reading to answer
        log(
            f"relation-extractor: marked {marked} pronouns in {len(partial)} partially annotated stories as the "
            "starting extractor reads them"
        )
        return out

    def _rehearsal(self, started: Any, path: str, log: Callable[[str], None]) -> list[Mapping[str, Any]]:
        """``rehearse`` annotated training stories of ``started``, the build at ``path`` as :meth:`_start_from`
        loaded it, its data source read again; none, said in the log, where they cannot be read (a jsonl file
        moved, data that changed since).

        Why: a user's stories seldom show all that init_from's did. Trained on 1,564 stories of the held-out
        phrasing families that name everyone, the extractor read such stories' facts at F1 1.000 and other
        stories of those families, where a relative goes unnamed ("Erik's wife's son"), worse than before it
        trained (2 hops: 0.85 of the answers right, 0.99 before; benchmarks/new_phrasings.py)."""
        import random

        try:
            stories = started.session.split("train")
        except AutoGLMError as e:
            log(f"relation-extractor: rehearses nothing: the stories {path} trained on cannot be read again ({e})")
            return []
        annotated = [s for s in stories if isinstance(s, Mapping) and s.get("mentions")]
        chosen = random.Random(self.init_seed).sample(annotated, min(self.config.rehearse, len(annotated)))
        log(f"relation-extractor: rehearses {len(chosen)} of the stories {path} trained on, beside this build's")
        return chosen

    def _member(self, k: int) -> "RelationExtractor":
        """Ensemble member ``k`` (2, 3, ...), untrained: this extractor's config, a seed of its own."""
        ctx = replace(self._member_context, stage=f"{self._member_context.stage}/member{k}")
        return RelationExtractor(self.config.model_copy(update={"members": 1}), ctx).to(self._anchor.device)

    def _fit_members(self, dataset: Dataset, train: list[Mapping[str, Any]], log: Callable[[str], None]) -> None:
        """Train members 2..``members`` as this one trained (those init_from gave, further), then score
        validation with all of them reading."""
        members = list(self.others) or [self._member(k) for k in range(2, self.config.members + 1)]
        self.others = nn.ModuleList()
        for k, member in enumerate(members, 2):
            said = lambda m, k=k: log(m.replace("relation-extractor:", f"relation-extractor member {k}:"))  # noqa: E731
            member._fit_facts(dataset, train, said, self.tokenizer)
            self.others.append(member)
        if self.others:  # each member's own training time and validation F1, then theirs together
            self.fit_report["members"] = [
                {"seconds": r.get("seconds"), "val_f1": round(r["val"]["f1"], 4) if "val" in r else None}
                for r in (m.fit_report for m in self.readers)
            ]
            self._score_val(dataset, lambda m: log(m.replace(":", f" ({len(self.others) + 1} members):", 1)))

    def _start_from(self, path: str) -> Any:
        """Take the encoder, tokenizer and heads of the relation-extractor in the artifact at ``path``; returns
        that artifact, loaded (its data source is read only if asked)."""
        import autoglm_sdk

        pipeline = autoglm_sdk.load(path)
        found = [s for s in pipeline.model.stage_objects.values() if isinstance(s, RelationExtractor)]
        if not found:
            raise DataError(f"relation-extractor: the artifact {path} has no relation-extractor stage")
        other = found[0]
        if other.classes != self.classes or other.attribute_values != self.attribute_values:
            raise DataError(
                f"relation-extractor: the extractor of {path} reads relations {other.classes[1:]} and values "
                f"{other.attribute_values}; this one needs {self.classes[1:]} and {self.attribute_values}",
                hint="give graph_builder the same edge_types, inverse and attribute_values as that build",
            )
        if other.config.head_size != self.config.head_size:
            raise DataError(
                f"relation-extractor: the extractor of {path} has head_size {other.config.head_size}, this one "
                f"{self.config.head_size}",
                hint=f"set graph_builder.head_size = {other.config.head_size}",
            )
        self.load_artifact_files(other.artifact_files())
        self.load_state_dict(other.state_dict())
        self.source = f"{other.source}, then {path}"
        return pipeline

    def _fit_facts(
        self,
        dataset: Dataset,
        train: list[Mapping[str, Any]],
        log: Callable[[str], None],
        tokenizer: Tokenizer | None = None,
    ) -> None:
        """Train the encoder and heads on the annotated stories ``train`` (from init_from's weights if given); a
        random-init encoder reads with ``tokenizer`` where given (an ensemble's members read the same tokens)."""
        if self.encoder is not None:
            for p in self.parameters():
                p.requires_grad_(True)
        elif self.config.pretrained is None:
            tokenizer = tokenizer or train_wordpiece([s["text"] for s in train], self.config.vocab_size, lowercase=True)
            self._install(self._new_encoder(tokenizer), tokenizer, f"trained on {len(train)} texts")
        else:
            encoder, tokenizer = load_checkpoint(self.config.pretrained, 0.1, self.name)
            self._install(encoder, tokenizer, f"pretrained {self.config.pretrained}")
        stories = [self.read(s["text"], s) for s in train]
        self._check_annotations(stories)
        self.word_types = self._learn_word_types(stories)
        if self.config.augment:
            stories = self._augmented(train)
        self.train_stories(stories, log)
        self._score_val(dataset, log)

    def _learn_word_types(self, stories: list[Story], share: float = 0.98) -> dict[str, int]:
        """Word -> the relation class a possessor has to the relative it names ("daughter-in-law" of "Ida's
        daughter-in-law" or "Amy is Ida's daughter-in-law": parent_in_law), for each word the annotated
        ``stories`` show between mention pairs stating a fact (:func:`word_pairs`): the type it had at least
        ``word_types`` times and in ``share`` of its uses, else NONE ("is", "and", "dear": seen, saying
        nothing). Reading then types such a fact by its word."""
        least = self.config.word_types
        seen: dict[str, Counter[int]] = {}
        for story in stories if least is not None else ():
            facts = self._fact_classes(story.gold or {})
            for i, j, words in word_pairs(story):
                label = self._pair_label(story.mentions[i], story.mentions[j], facts)
                for word in words if label != NONE else ():
                    seen.setdefault(word, Counter())[label] += 1
        out = {}
        for word, counts in sorted(seen.items()):
            c, n = counts.most_common(1)[0]
            out[word] = c if n >= least and n >= share * counts.total() else NONE  # NONE: seen, says nothing
        return out

    def _score_val(self, dataset: Dataset, log: Callable[[str], None]) -> None:
        val = [s for s in dataset.splits.get("val") or [] if isinstance(s, Mapping) and s.get("mentions")]
        if val:
            self.fit_report["val"] = fact_scores(self, val[: self.config.train_stories // 4 or 1])
            log(f"relation-extractor: validation facts F1 {self.fit_report['val']['f1']:.3f}")

    def _augmented(self, train: list[Mapping[str, Any]]) -> Callable[[], list[Story]]:
        """A fresh augmentation of ``train`` for every epoch: people renamed (to names of other stories' people
        with the same attribute value, or made up), asides and endings with places, years and things put beside
        people, links said another way ("is" -> "turned out to be"), verbs swapped ("miss" -> "cherish"), clauses
        naming someone else added after statements, neighbouring statements joined, opening clauses added."""
        import random

        rng, share, attribute = random.Random(self.init_seed), self.config.augment, self.config.attribute
        pools: dict[Any, set[str]] = {}
        for sample in train:
            for e in sample.get("entities", ()):
                if e.get("name"):
                    pools.setdefault(e.get(attribute), set()).add(e["name"])
        pool = {value: sorted(names) for value, names in pools.items()}
        # made-up names, names of another attribute value, asides with places and things, rewordings and verbs only
        # for a pretrained encoder: a tokenizer trained on these stories has no pieces for them, and a small encoder
        # then learned the question's roles worse (org chart test: 13 of 60 swapped, 3 without; with asides, its
        # answers fell to 0.80)
        pretrained = self.config.pretrained is not None
        made_up, crossed, asides = (0.6, 0.3, share / 2) if pretrained else (0.0, 0.0, 0.0)

        def epoch() -> list[Story]:
            renamed = (with_names(s, rng, share, pool, attribute, made_up, crossed) for s in train)
            if asides:
                renamed = (
                    with_verbs(with_rewordings(with_asides(s, rng, asides), rng, share), rng, share) for s in renamed
                )
            joined = (with_joins(with_bystanders(s, rng, share / 2), rng, share / 2) for s in renamed)
            return [self.read(g["text"], g) for g in (with_openings(s, rng, share, pretrained) for s in joined)]

        return epoch

    def _check_annotations(self, stories: list[Story]) -> None:
        """Refuse annotations the extractor cannot learn from, with the reason: no known relation, or facts
        that look written the wrong way round (their words give people contradicting attribute values)."""
        facts = [r for s in stories for _, r, _ in s.gold.get("facts", ())]
        unknown = sorted({r for r in facts if self.type_of(r) is None})
        if facts and len(unknown) == len(set(facts)):
            raise DataError(
                f"relation-extractor: the facts' relations {unknown[:5]} are neither edge types {self.edge_types} "
                "nor relation_words",
                hint="set graph_builder.edge_types, or map words to types with graph_builder.relation_words",
            )
        conflicted = sum(1 for s in stories if s.gold["conflicts"])
        if conflicted > max(2, len(stories) // 10):
            raise DataError(
                f"relation-extractor: in {conflicted} of {len(stories)} stories a person gets contradicting "
                f"{self.config.attribute} values from the facts' words: are facts written [tail, relation, head]?",
                hint="a fact [head, relation, tail] reads 'tail is head's relation': [Sarah, mother, Linda] means "
                "Linda is Sarah's mother",
            )
        self.fit_report["unknown_relations"] = unknown

    def train_stories(self, stories: Any, log: Callable[[str], None]) -> None:
        """Minimise :meth:`story_loss` over ``stories`` (a list, or a function giving each epoch's list)."""
        c = self.config
        if c.pretrained is not None and c.freeze_layers:
            frozen = [self.encoder.embeddings, *self.encoder.encoder.layer[: c.freeze_layers]]
            for module in frozen:
                module.requires_grad_(False)
        encoder_params = [p for p in self.encoder.parameters() if p.requires_grad]
        encoder_ids = {id(p) for p in encoder_params}
        heads = [p for p in self.parameters() if id(p) not in encoder_ids and p.requires_grad]
        encoder_lr = c.encoder_lr if c.pretrained is not None else c.lr
        groups = [{"params": encoder_params, "lr": encoder_lr}, {"params": heads, "lr": c.lr}]
        # one fused kernel per step instead of a loop over parameters (CPU and CUDA have one)
        optimizer = torch.optim.AdamW(groups, fused=self._anchor.device.type in ("cpu", "cuda") or None)
        epoch_stories = stories if callable(stories) else lambda: stories
        stories = epoch_stories()
        steps = c.epochs * ((len(stories) + c.batch_size - 1) // c.batch_size)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min(1.0, (step + 1) / max(1, steps // 10)) * max(0.0, 1 - step / steps)
        )
        generator = torch.Generator().manual_seed(self.init_seed)
        self._precision(training=True)
        try:
            self.train()
            started, step, history = time.perf_counter(), 0, []
            for epoch in range(c.epochs):
                stories = stories if epoch == 0 else epoch_stories()
                order = torch.randperm(len(stories), generator=generator).tolist()
                total = 0.0
                for k in range(0, len(order), c.batch_size):
                    batch = [stories[i] for i in order[k : k + c.batch_size]]
                    loss = sum(self.story_loss(s, h) for s, h in zip(batch, self.encode(batch))) / len(batch)
                    optimizer.zero_grad()
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(self.parameters(), 1.0)
                    optimizer.step()
                    schedule.step()
                    total += float(loss.detach()) * len(batch)
                    step += 1
                    if step % 50 == 0:
                        log(
                            f"relation-extractor: epoch {epoch + 1}/{c.epochs}, step {step}/{steps}, "
                            f"loss {float(loss.detach()):.3f}"
                        )
                history.append(total / len(stories))
                log(
                    f"relation-extractor: epoch {epoch + 1}/{c.epochs} loss {history[-1]:.4f} "
                    f"({time.perf_counter() - started:.0f}s)"
                )
            self.eval()
            self.fit_report.update(
                {
                    "loss": history,
                    "seconds": round(time.perf_counter() - started, 1),
                    "stories": len(stories),
                    "encoder": self.source,
                    "bf16": self._bf16,
                }
            )
        finally:
            self._precision(training=False)

    def _precision(self, training: bool) -> None:
        """How the encoder computes: while training, in bfloat16 where ``config.bf16`` chooses it, with the
        configured dropout on attention weights; otherwise in float32, so that reading does not depend on the
        machine that trained."""
        self._bf16 = training and bf16_training(self.config.bf16, self._anchor.device)
        for layer in self.encoder.encoder.layer:  # a BERT's (as freeze_layers assumes)
            layer.attention.self.dropout.p = self.config.attention_dropout
        # in bfloat16 on a CPU, plain matrix products (eager) ran attention faster than the fused kernel (SDPA)
        self.encoder.set_attn_implementation("eager" if self._bf16 else "sdpa")

    def story_loss(self, story: Story, states: torch.Tensor) -> torch.Tensor:
        """The sum of the five heads' losses on one story's gold annotation."""
        gold = story.gold or {}
        tags = torch.zeros(len(story.ids), dtype=torch.long, device=states.device)
        if gold.get("partial"):  # pronouns are not annotated there: neither mentions nor not, as far as we know
            for i, (a, b) in enumerate(story.offsets):
                if story.text[a:b].lower() in PRONOUNS:
                    tags[i] = -100
        for m in story.mentions:
            tags[m.first] = 1
            tags[m.first + 1 : m.last] = 2
        loss = F.cross_entropy(self.tagger(states), tags, ignore_index=-100)
        if not story.mentions:
            return loss
        reps = self.spans(states, story.mentions)
        kinds = torch.tensor([m.kind for m in story.mentions], device=states.device)
        loss = loss + F.cross_entropy(self.kind_head(reps), kinds)
        scores, pairs = self.coref_logits(story, reps)
        if pairs:
            same = self._same_person(story, pairs)
            loss = loss + F.binary_cross_entropy_with_logits(scores, torch.tensor(same, device=states.device))
            if self.config.antecedent_ranking:
                loss = loss + self._antecedent_ranking_loss(story, scores, pairs, same)
        pairs = self._pairs_in_sentences(story.mentions)
        if pairs:
            facts = self._fact_classes(gold)
            labels = [self._pair_label(story.mentions[i], story.mentions[j], facts) for i, j in pairs]
            features = self.relation_features(story, states, reps, pairs)
            loss = loss + F.cross_entropy(self.relation(features), torch.tensor(labels, device=states.device))
            told = [(n, self._gold_attribute(gold, story.mentions[j])) for n, (i, j) in enumerate(pairs) if labels[n]]
            told = [(n, v) for n, v in told if v is not None]
            if told and self.attribute_values:
                rows = torch.tensor([n for n, _ in told], device=states.device)
                loss = loss + F.cross_entropy(
                    self.word_attribute_logits(features[rows]), torch.tensor([v for _, v in told], device=states.device)
                )
        values = [self._gold_attribute(gold, m) for m in story.mentions]
        known = [k for k, v in enumerate(values) if v is not None]
        if known and self.attribute_values:
            logits = self.attribute(reps[known])
            loss = loss + F.cross_entropy(logits, torch.tensor([values[k] for k in known], device=states.device))
        question = self._question_sentence(story)
        roles = self._gold_roles(story, question)
        if roles:
            index = [k for k, _ in roles]
            loss = loss + F.cross_entropy(
                self.role(reps[index]), torch.tensor([r for _, r in roles], device=states.device)
            )
        return loss

    @staticmethod
    def _same_person(story: Story, pairs: list[tuple[int, int]]) -> list[float]:
        """Gold coreference of (mention, earlier mention) pairs: 1.0 where they share a person, else 0.0."""
        return [float(bool(set(story.mentions[j].entities) & set(story.mentions[i].entities))) for j, i in pairs]

    @staticmethod
    def _antecedent_ranking_loss(
        story: Story, scores: torch.Tensor, pairs: list[tuple[int, int]], same: list[float]
    ) -> torch.Tensor:
        """Mean over singular pronouns with an antecedent in reach of -log(the softmax mass of its right earlier
        mentions among all its earlier mentions). Why: scored pair by pair, "hers" in "Ivy is Tom's mother. Isabel
        is learning to sail. Isaac is a son of hers." rated Ivy 0.74 and Isabel 0.57; each pair's loss is content
        with any score for Ivy as long as Isabel's is high too, and reading takes the likeliest. Plural pronouns
        stand for several antecedents at once, so they are left to the pairwise loss."""
        rows: dict[int, list[int]] = {}
        for n, (j, _) in enumerate(pairs):
            if KINDS[story.mentions[j].kind] == "pronoun":
                rows.setdefault(j, []).append(n)
        losses = []
        for row in rows.values():
            right = [n for n in row if same[n]]
            if right:
                losses.append(torch.logsumexp(scores[row], 0) - torch.logsumexp(scores[right], 0))
        return torch.stack(losses).mean() if losses else scores.new_zeros(())

    def type_of(self, relation: str) -> str | None:
        """The relation type an annotated fact names: a type, or a word of ``relation_words``; None if neither."""
        word = self.config.relation_words.get(relation)
        kind = word.type if word is not None else relation
        return kind if kind in self.classes[1:] else None

    def _fact_classes(self, gold: Mapping[str, Any]) -> dict[tuple[int, int], int]:
        """(head entity, tail entity) -> relation class, both directions of every stated fact."""
        out: dict[tuple[int, int], int] = {}
        for head, relation, tail in gold.get("facts", ()):
            kind = self.type_of(relation)
            if kind is None:
                continue
            c = self.classes.index(kind)
            out[(int(head), int(tail))] = c
            out.setdefault((int(tail), int(head)), self.reverse[c])
        return out

    @staticmethod
    def _pair_label(a: Mention, b: Mention, facts: dict[tuple[int, int], int]) -> int:
        """The relation class of a mention pair: the fact between the people they name. A plural mention names a
        fact only when every one of its people has that fact: "their father" is the father of each, but in
        "Kyle's wife Amy packed them lunch" Amy is the wife of only one of "them", and decoding would give the
        fact to all of them."""
        labels = {facts.get((x, y), NONE) for x in a.entities for y in b.entities}
        return labels.pop() if len(labels) == 1 else NONE

    def _gold_attribute(self, gold: Mapping[str, Any], m: Mention) -> int | None:
        if len(m.entities) != 1:
            return None
        value = gold.get("values", {}).get(m.entities[0])
        return self.attribute_values.index(value) if value in self.attribute_values else None

    @staticmethod
    def _question_sentence(story: Story) -> int | None:
        asked = [i for i, (a, b) in enumerate(story.sentences) if story.text[a:b].rstrip().endswith("?")]
        return asked[-1] if asked else None

    def _gold_roles(self, story: Story, question: int | None) -> list[tuple[int, int]]:
        query = (story.gold or {}).get("query_entities")
        if question is None or not query:
            return []
        target, source = int(query[0]), int(query[1])
        roles = []
        for k, m in enumerate(story.mentions):
            if m.sentence == question:
                role = 1 if m.entities == (target,) else 2 if m.entities == (source,) else 0
                roles.append((k, role))
        return roles

    # ------------------------------------------------------------- inference

    def forward(self, samples: list[dict[str, Any]]) -> SemanticGraph:
        self._require()
        texts = []
        for i, sample in enumerate(samples):
            text = sample.get("text") if isinstance(sample, Mapping) else None
            if not isinstance(text, str) or not text.strip():
                raise InputError(f"relation-extractor: sample {i} has no `text` (a non-empty string)")
            if len(text) > self.config.max_chars:
                raise InputError(
                    f"relation-extractor: sample {i} has {len(text):,} characters, more than max_chars="
                    f"{self.config.max_chars:,}",
                    hint="split the text into stories, or raise graph_builder.max_chars",
                )
            if "?" not in text:
                raise InputError(
                    f"relation-extractor: sample {i} asks no question: {text[:60]!r}",
                    hint="end the story with a question such as 'How is Clara related to Anna?'",
                )
            texts.append(text)
        gold = [self.pipeline_training and bool(s.get("mentions")) and self._reads_gold(s["text"]) for s in samples]
        unread = [text for text, g in zip(texts, gold) if not g]
        read = iter(self._relate_again(unread) if self.learning_from_answers else self.extract_batch(unread))
        graphs = [
            Extraction.from_gold(self, self.read(text, sample)).graph if g else next(read).graph
            for text, sample, g in zip(texts, samples, gold)
        ]
        return SemanticGraph.collate(graphs).to(self._anchor.device)

    def _reads_gold(self, text: str) -> bool:
        """Whether an annotated training story gives the reasoner its gold graph (``reasoner_reads``); "both"
        splits the stories in half by a hash of their text, stable across runs and restarts."""
        mode = self.config.reasoner_reads
        return mode == "gold" or (mode == "both" and zlib.crc32(text.encode()) % 2 == 0)

    # ------------------------------------------------------- learning from answers

    @property
    def learning_from_answers(self) -> bool:
        """Whether the relation classifier is training on the pipeline's answer loss (learn_from_answers, in the
        build that fitted it: a loaded artifact's extractor is frozen)."""
        return self.config.learn_from_answers and any(p.requires_grad for p in self.relation.parameters())

    @property
    def soft_types(self) -> bool:
        """Whether graphs carry ``edge_type_probs``: while the pipeline trains and the answers teach relations."""
        return self.pipeline_training and self.learning_from_answers

    @property
    def cacheable(self) -> bool:
        """A story's graph changes while the answers teach the relation classifier: the SDK must not keep it."""
        return not self.config.learn_from_answers

    @property
    def lr_scale(self) -> float | None:
        """The share of the pipeline's learning rate the relation classifier trains at from answers."""
        return self.config.answers_lr_scale if self.config.learn_from_answers else None

    def _relate_again(self, texts: list[str]) -> list[Extraction]:
        """Extractions whose facts come from the relation classifier as it is now (with gradients while the
        pipeline trains); everything before it (encoder, mentions, people, query) is read once per text."""
        new = [t for t in dict.fromkeys(texts) if t not in self._read_once]
        for text, extraction in zip(new, self.extract_batch(new, keep_features=True)):
            self._read_once[text] = extraction.kept
        out = []
        for text in texts:
            prepared, features, pairs = self._read_once[text]
            extraction = prepared.unrelated()
            if pairs:
                with torch.set_grad_enabled(self.soft_types):
                    probs = self._mean(lambda r, k: r.relation(features[k]).softmax(-1))
                    extraction.relate(probs, pairs)
            extraction.finish()
            out.append(extraction)
        return out

    def extract(self, text: str) -> Extraction:
        """Mentions, people, facts and the query of one text."""
        return self.extract_batch([text])[0]

    @torch.no_grad()
    def extract_batch(self, texts: list[str], keep_features: bool = False) -> list[Extraction]:
        """:meth:`extract` for many texts, their encoder windows in padded batches of ``batch_size`` stories;
        ``keep_features``: each extraction also keeps (itself before relations, the relation classifier's
        input, the mention pairs) as ``kept``."""
        was_training, pipeline_training = self.training, self.pipeline_training
        self.eval()
        stories = [self.read(text) for text in texts]
        out = []
        for k in range(0, len(stories), self.config.batch_size):
            chunk = stories[k : k + self.config.batch_size]
            states = zip(*(reader.encode(chunk) for reader in self.readers))  # each story's states by each member
            out.extend(self._extract(s, list(h), keep_features) for s, h in zip(chunk, states))
        nn.Module.train(self, was_training)  # not self.train: that would also forget whether the pipeline trains
        self.pipeline_training = pipeline_training
        return out

    @property
    def readers(self) -> list["RelationExtractor"]:
        """The extractors that read together: this one and its ensemble members."""
        return [self, *self.others]

    def _extract(self, story: Story, states: list[torch.Tensor], keep_features: bool = False) -> Extraction:
        """Read one story from its token ``states`` by each of :attr:`readers`: every head's probabilities are
        their mean, and each decision (tags, kinds, people, facts) is taken once, on the means."""
        tags = self._mean(lambda r, k: r.tagger(states[k]).softmax(-1)) if len(story.ids) else None
        first = extraction = self._read_mentions(story, states, tags, keep_features)
        # read again when the question's people are not linked, or linked only through facts read unsurely
        # ("Victor and Andre adore their father, who ...", "father" missed: a bridge "Andre is Victor's parent")
        for floor in self.config.mention_floors if tags is not None and (first.unlinked or first.bridges) else ():
            again = self._read_mentions(replace(story), states, self._second_look(first, tags, floor), keep_features)
            if _doubt(again) < _doubt(extraction):
                extraction = again
            if _doubt(extraction) == (False, False):
                break
        self.stats["second_looks"] += extraction is not first
        self.stats["texts"] += 1
        self.stats["people"] += len(extraction.people)
        self.stats["facts"] += len(extraction.facts)
        self.stats["texts_with_problems"] += bool(extraction.problems)
        return extraction

    def _second_look(self, extraction: Extraction, tags: torch.Tensor, floor: float) -> torch.Tensor:
        """``tags`` with every token of a sentence that gave no sure fact (but the question) taken as inside a
        mention (B or I, the likelier) where its probability of being outside one is at most ``1 - floor``;
        a possessive ending is left as it was (taken, its "s" could begin a person of its own)."""
        story = extraction.story
        quiet = set(range(len(story.sentences))) - {f[4] for f in extraction.facts if f not in extraction.bridges}
        quiet.discard(self._question_sentence(story))
        lowered = tags.clone()
        for i, sentence in enumerate(story.token_sentence):
            if sentence in quiet and 1 - float(tags[i, 0]) >= floor and not possessive_ending(story, i):
                lowered[i, 0] = 0.0
        return lowered

    def _mean(self, head: Callable[["RelationExtractor", int], torch.Tensor]) -> torch.Tensor:
        """The mean of one head's output over :attr:`readers` (``head(reader, its index)``)."""
        readers = self.readers
        return sum(head(r, k) for k, r in enumerate(readers)) / len(readers)

    def _read_mentions(
        self, story: Story, states: list[torch.Tensor], tags: torch.Tensor | None, keep_features: bool
    ) -> Extraction:
        """The rest of :meth:`_extract`, from the tag probabilities on."""
        readers = self.readers
        story.mentions = self._decode_mentions(story, tags)
        extraction = Extraction(self, story)
        features, pairs = None, []
        if story.mentions:
            reps = [r.spans(states[k], story.mentions) for k, r in enumerate(readers)]
            kinds = self._mean(lambda r, k: r.kind_head(reps[k]).softmax(-1)).argmax(-1).tolist()
            if (whole := self._names_as_written(story, kinds)) is not None:
                story.mentions = whole
                reps = [r.spans(states[k], story.mentions) for k, r in enumerate(readers)]
                kinds = self._mean(lambda r, k: r.kind_head(reps[k]).softmax(-1)).argmax(-1).tolist()
            for m, k in zip(story.mentions, kinds):
                m.kind = k
            pairs = self._pairs_in_sentences(story.mentions)
            relations = None
            if pairs:
                each = [r.relation_features(story, states[k], reps[k], pairs).float() for k, r in enumerate(readers)]
                features = each  # learning from answers goes on from the classifiers' inputs
                relations = self._mean(lambda r, k: r.relation(each[k]).softmax(-1))
            coref = [r.coref_logits(story, reps[k]) for k, r in enumerate(readers)]
            links = coref[0][1]  # every reader scores the same (mention, earlier mention) pairs
            same = self._mean(lambda r, k: torch.sigmoid(coref[k][0]))
            values = self._mean(lambda r, k: r.attribute(reps[k]).softmax(-1)) if self.attribute_values else None
            extraction.resolve(same.tolist(), links, values, _related(pairs, relations))
            question = self._question_sentence(story)
            in_question = [k for k, m in enumerate(story.mentions) if m.sentence == question]
            if in_question:
                extraction.ask(in_question, self._mean(lambda r, k: r.role(reps[k][in_question]).softmax(-1)))
            told = None
            if pairs:
                extraction.relate(relations, pairs)
                if values is not None:
                    told = self._mean(lambda r, k: r.word_attribute_logits(each[k]).softmax(-1))
            if values is not None:
                extraction.attributes(values, told, pairs)
        if keep_features:  # before finish: its problems must still see whether the question named two people
            extraction.kept = (extraction.unrelated(), features, pairs)
        extraction.finish()
        return extraction

    def _names_as_written(self, story: Story, kinds: list[int]) -> list[Mention] | None:
        """``story.mentions`` with names as the text writes them; None when nothing changes. A capitalised name
        ends before the lowercase words it ends in ("Bethan rang to say": the tagger ran on into "rang"). A
        "name" written all in lowercase is no one in a story that capitalises names ("omg", "telly",
        "jalebis": 32 such in the 315 hand-written stories of 2026-12-07, none of them a person), and nor is a
        title read as a name of its own ("Old Mr. Abdul next door": "Mr" is no one, Abdul is), one letter
        ("Q: And Mateo's mother?"), emoji ("my husband of 8 yrs 🙄😂"), a maiden name ("née Laskaris") or a family
        (see :func:`_family_names`). Names
        written one after another ("Rosa Delgado", "Patrick O'Brien") are one mention: the tagger learnt from
        single names, and begins a mention at each capitalised word, so a surname would be a person of its
        own."""
        text, out, name = story.text, [], KINDS.index("name")
        capitalised = any(k == name and text[m.start].isupper() for m, k in zip(story.mentions, kinds))
        kept = [
            (self._cut_name_end(story, m, k == name), k)
            for m, k in zip(story.mentions, kinds)
            if not (capitalised and k == name and text[m.start : m.end].islower())
            and not (k == name and _no_name(text[m.start : m.end], text[max(m.start - 6, 0) : m.start]))
            and text[m.start : m.end].rstrip(".") not in HONORIFICS  # "Mr" read as a description is no one either
        ]
        changed = len(kept) < len(story.mentions) or any(a is not b for (a, _), b in zip(kept, story.mentions))
        last_kind, names = None, []
        for m, k in kept:
            before = out[-1] if out else None
            if (
                before is not None
                and k == name
                and last_kind == name
                and before.sentence == m.sentence
                and text[before.end : m.start] == " "
                and text[m.start].isupper()
            ):
                out[-1] = self._span(story, before.first, m.last) or before
            else:
                out.append(m)
                names.append(k == name)
            last_kind = k
        question = self._question_sentence(story)
        family = _family_names(text, [m for m, is_name in zip(out, names) if is_name and m.sentence != question])
        return [m for m in out if m not in family] if changed or len(out) < len(kept) or family else None

    def _cut_name_end(self, story: Story, m: Mention, is_name: bool) -> Mention:
        """``m``, when it begins with a capital, without what follows a bracket or a comma inside it ("Svetlana
        (Mom" -> "Svetlana": a tagger that learnt full names runs on into the next capital), and for a name
        without the lowercase words it ends in ("Bethan rang" -> "Bethan"; "Maria de la Cruz" stays whole)."""
        written = story.text[m.start : m.end]
        if not written[:1].isupper():
            return m
        end = len(written)
        if (inside := re.search(r"\s*[(\[{,;:]", written[1:])) is not None:
            end = inside.start() + 1
        while is_name and (last := re.search(r"\s+(\S+)$", written[:end])) and last[1][0].islower():
            end = last.start()
        return m if end == len(written) else self._mention(story, m.start, m.start + end) or m

    def _decode_mentions(self, story: Story, tag_probs: torch.Tensor | None) -> list[Mention]:
        """Mentions from each token's O/B/I probabilities (None: a story with no tokens)."""
        if tag_probs is None:
            return []
        tags = tag_probs.argmax(-1).tolist()
        mentions, open_at = [], None
        for i, tag in enumerate([*tags, 0]):
            inside = tag == 2 and open_at is not None and story.token_sentence[i] == story.token_sentence[open_at]
            if open_at is not None and not inside:
                mentions.append(self._span(story, open_at, i))
                open_at = None
            if tag == 1 or (tag == 2 and open_at is None and i < len(tags)):
                open_at = i
        return self._names_again_in_question(story, [m for m in mentions if m is not None])

    def _names_again_in_question(self, story: Story, mentions: list[Mention]) -> list[Mention]:
        """``mentions`` with every other place the question writes a name the story already gave someone: a
        name that is also a word ("Can", "Hope", "Will") is easy to miss in a short question, and without it
        the question names one person."""
        question = self._question_sentence(story)
        if question is None:
            return mentions
        a, b = story.sentences[question]
        names = {
            story.text[m.start : m.end]
            for m in mentions
            if m.sentence != question
            and story.text[m.start].isupper()
            and story.text[m.start : m.end].split()[0].lower() not in PRONOUNS
        }
        taken = [(m.start, m.end) for m in mentions]
        for name in sorted(names, key=len, reverse=True):
            for hit in re.finditer(rf"(?<![\w'-]){re.escape(name)}(?![\w-])", story.text[a:b]):
                start, end = a + hit.start(), a + hit.end()
                if any(s < end and start < e for s, e in taken):
                    continue
                mention = self._mention(story, start, end)
                if mention is not None:
                    mentions.append(mention)
                    taken.append((start, end))
        return sorted(mentions, key=lambda m: m.start)

    def _span(self, story: Story, first: int, last: int) -> Mention | None:
        # whole words: a mention tagged from a word's middle piece grows to the word
        start, end = story.offsets[first][0], story.offsets[last - 1][1]
        text = story.text
        while start > 0 and (
            text[start - 1].isalnum() or (text[start - 1] == "-" and text[start - 2 : start - 1].isalnum())
        ):
            start -= 1
        while end < len(text) and (text[end].isalnum() or (text[end] == "-" and text[end + 1 : end + 2].isalnum())):
            end += 1
        return self._mention(story, start, end)

    # ------------------------------------------------------------- lifecycle

    def artifact_files(self) -> dict[str, bytes]:
        self._require()
        files = {
            TOKENIZER_FILE: self.tokenizer.to_str().encode(),
            CONFIG_FILE: self.encoder.config.to_json_string(use_diff=False).encode(),
            FIT_FILE: json.dumps(self.fit_report).encode(),
            READS_FILE: json.dumps(self.reads).encode(),
            WORDS_FILE: json.dumps({w: self.classes[c] if c else None for w, c in self.word_types.items()}).encode(),
        }
        for k, member in enumerate(self.others, 2):  # member k's own files, named member<k>-<file>
            files.update({f"member{k}-{name}": data for name, data in member.artifact_files().items()})
        return files

    def load_artifact_files(self, files: dict[str, bytes]) -> None:
        from transformers import BertConfig, BertModel

        missing = [name for name in (TOKENIZER_FILE, CONFIG_FILE) if name not in files]
        if missing:
            raise ArtifactError(
                f"relation-extractor: the artifact lacks this stage's {' and '.join(missing)}",
                hint="rebuild the artifact with `autoglm build`",
            )
        try:
            tokenizer = Tokenizer.from_str(files[TOKENIZER_FILE].decode())
            config = BertConfig.from_dict(json.loads(files[CONFIG_FILE]))
        except Exception as exc:  # tokenizers raises plain Exceptions on bad JSON
            raise ArtifactError(f"relation-extractor: cannot read this stage's artifact files: {exc}") from exc
        # an artifact without reads.json read the token right after each mention, apostrophe or not; one whose
        # reads name no encoding encoded neighbouring sentences together, in windows, and one that names no case
        # read no letter case (the heads depend on the reads: set them first)
        reads = json.loads(files[READS_FILE]) if READS_FILE in files else {"word_after": "next_token"}
        self.reads = {"encoding": "windows", "case": "none", **reads}
        self._install(BertModel(config, add_pooling_layer=False), tokenizer, "read from the artifact")
        self.fit_report = json.loads(files[FIT_FILE]) if FIT_FILE in files else {}
        words = json.loads(files[WORDS_FILE]) if WORDS_FILE in files else {}
        self.word_types = {w: self.classes.index(kind) if kind in self.classes else NONE for w, kind in words.items()}
        self.others = nn.ModuleList()
        k = 2
        while f"member{k}-{CONFIG_FILE}" in files:  # before the weights: they hold the members' too
            member = self._member(k)
            member.load_artifact_files({n.split("-", 1)[1]: d for n, d in files.items() if n.startswith(f"member{k}-")})
            self.others.append(member)
            k += 1
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "RelationExtractor":
        # frozen after fit: the pipeline's train() must not turn dropout back on; whether the pipeline trains
        # decides which graphs training stories get (reasoner_reads)
        self.pipeline_training = mode
        frozen = self.encoder is not None and not any(p.requires_grad for p in self.parameters())
        return super().train(mode and not frozen)

    def report(self) -> dict[str, Any]:
        return {"encoder": self.source, **self.stats, "fit": self.fit_report}

    def explain(self, graph: SemanticGraph) -> dict[str, Any]:
        """People and facts of one (unbatched) graph with confidences and the sentence each fact came from."""
        names = list(graph.node_text)
        values = [*self.attribute_values, "unknown"]
        width = len(values)
        nodes = []
        for name, row in zip(names, graph.x.tolist()):
            node = {"name": name}
            if self.attribute_values:
                node[self.config.attribute] = values[max(range(width), key=lambda k: row[k])]
            nodes.append(node)
        facts = [
            {
                "head": names[s],
                "relation": self.graph_types[t],
                "tail": names[d],
                "confidence": round(c, 4),
                "span": span,
            }
            for (s, d), t, c, span, stated in zip(
                graph.edge_index.t().tolist(),
                graph.edge_type.tolist(),
                graph.edge_attr[:, 0].tolist(),
                graph.edge_span,
                graph.edge_stated,
            )
            if stated
        ]
        src = [names[i] for i in graph.is_source.nonzero().flatten().tolist()]
        tgt = [names[i] for i in graph.is_target.nonzero().flatten().tolist()]
        return {
            "nodes": nodes,
            "facts": facts,
            "query": {"target": tgt[:1], "source": src[:1]},
            "unparsed": list(graph.unparsed),
            "problems": list(graph.problems),
        }


#: how unlikely "none" must be for a pronoun's fact with someone to keep it from standing for them
SURE_FACT = 0.02


def with_read_pronouns(sample: Mapping[str, Any], extraction: Extraction) -> tuple[Mapping[str, Any], int]:
    """A partially annotated ``sample`` with each unmarked pronoun that ``extraction`` (of its text) resolved to
    annotated people marked as their mention, and how many were marked. A person read maps to the one annotated
    entity whose marked names it has among its mentions; a pronoun resolved to anyone else stays unmarked."""
    story, gold = extraction.story, list(sample.get("mentions") or ())
    if story.said is not None:  # read rewritten (first person): its offsets are not the annotation's
        return sample, 0

    def marked(m: Mention) -> list[Mapping[str, Any]]:
        return [g for g in gold if int(g["start"]) < m.end and m.start < int(g["end"])]

    entity_of = {}
    for person, mentions in enumerate(extraction.people):
        entities = {e for k in mentions for g in marked(story.mentions[k]) for e in g["entities"]}
        if len(entities) == 1:
            entity_of[person] = entities.pop()
    added = []
    for k, m in enumerate(story.mentions):
        owners = extraction.owner[k]
        if story.text[m.start : m.end].lower() not in PRONOUNS or marked(m) or not owners:
            continue
        if all(p in entity_of for p in owners):
            entities = sorted({entity_of[p] for p in owners})
            added.append({"start": m.start, "end": m.end, "entities": entities, "kind": "pronoun"})
    if not added:
        return sample, 0
    return {**sample, "mentions": sorted([*gold, *added], key=lambda g: int(g["start"]))}, len(added)


def _no_name(written: str, before: str) -> bool:
    """Whether a mention tagged as a name cannot be anyone's: one letter, no letter at all, or a maiden name
    after "née" (``before``: the characters before it; "Katerina (née Laskaris)" is one woman). A title alone
    is no one whatever its kind, which the caller checks."""
    maiden = re.search(r"\b(?:née|nee|Née|Nee)\W*$", before) is not None
    return maiden or sum(c.isalpha() for c in written) < 2


#: what follows a surname that names a family: "the Tehrani family tree", "the Lindqvist line"
_FAMILY_WORD = re.compile(r"(?:'s)?\s+(?:family|families|line|tree|clan|household|side)\b", re.IGNORECASE)


def _family_names(text: str, names: list[Mention]) -> list[Mention]:
    """The ``names`` that are a family, not a person: a surname written alone that ends another name of the
    story and begins none, in capitals or before a word for a family ("BRAUN - notes" beside "Wilhelm Braun",
    "the Lindqvist line" beside "Nils Lindqvist"), but not in an index's order ("HALVORSEN, Harold": he is one of
    the people). Elsewhere a lone surname may be a person ("Chief Adebayo ... Adebayo"), or the other name a
    misreading ("When Mum married Marco I was eleven", told in the third person,
    joins "Marco Giulia"); ``names`` leaves out the question's."""
    words = [text[m.start : m.end].casefold().split() for m in names]
    last = {w[-1] for w in words if len(w) > 1}
    first = {w[0] for w in words if len(w) > 1}
    return [
        m
        for m, w in zip(names, words)
        if len(w) == 1
        and w[0] in last
        and w[0] not in first
        and (
            (text[m.start : m.end].isupper() and not re.match(r",\s*[A-Z]", text[m.end :]))
            or _FAMILY_WORD.match(text, m.end) is not None
        )
    ]


def _related(pairs: list[tuple[int, int]], relations: torch.Tensor | None) -> dict[tuple[int, int], float]:
    """The mention pairs of one sentence read as surely related (either way round), with the probability of a
    fact: a pronoun is not the person it has a fact with ("Chloe is a daughter of hers": hers is not Chloe).
    Only sure readings count: a pronoun beside its own person's relative is often read as related too ("Nour
    takes his side; her sister Dalia": her and Nour, 0.69)."""
    if relations is None:
        return {}
    out: dict[tuple[int, int], float] = {}
    for (i, j), none in zip(pairs, relations[:, 0].tolist()):
        if none < SURE_FACT:
            for pair in ((i, j), (j, i)):
                out[pair] = max(out.get(pair, 0.0), 1 - none)
    return out


def bf16_training(choice: bool | None, device: torch.device) -> bool:
    """Whether training runs under bfloat16 autocast: ``choice``, or, when it is None, where ``device`` computes
    bfloat16 natively (a CUDA GPU that supports it; a CPU with AVX512-BF16 or AMX), since elsewhere it is
    emulated and slower than float32."""
    if choice is not None:
        return choice
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_bf16()


def _doubt(extraction: Extraction) -> tuple[bool, bool]:
    """How far a reading is from one that links the question by what it read surely: (it has problems, it links
    the question's people only through facts below the threshold); lower is better."""
    return bool(extraction.problems), bool(extraction.bridges)


def _bucket(distance: int) -> int:
    d = abs(distance)
    return 0 if d <= 1 else 1 if d <= 2 else 2 if d <= 4 else 3 if d <= 8 else 4 if d <= 16 else 5 if d <= 32 else 6
