"""Specs and configs of ``causal-lm``, ``span-extractor`` and ``answer-pretraining``. Imported by the CLI and
manifest validation: no torch, transformers or peft here; the plugins live in :mod:`autoglm_lm.causal_lm`,
:mod:`autoglm_lm.span` and :mod:`autoglm_lm.pretraining`."""

from __future__ import annotations

import string
from typing import Literal

from pydantic import Field, field_validator, model_validator

from autoglm_sdk.plugin import BuildContext, PathField, PluginConfig, PluginSpec, Port, PortMismatch

#: the fields a prompt template may name
PROMPT_FIELDS = ("text", "graph", "question")


class CausalLMConfig(PluginConfig):
    """A causal language model (transformers) that writes the task's target text, conditioned on the reasoned graph
    by ``graph_tokens`` soft-prompt embeddings and, in the prompt, by the graph's facts as text."""

    pretrained: str | None = PathField(
        None,
        description="A local checkpoint directory written by `save_pretrained` (config.json, weights and a fast "
        "tokenizer), loaded with local_files_only: no hub download. Unset: a model of `architecture` with random "
        "weights and a byte-level BPE tokenizer trained on the training split; the size keys below then apply.",
    )
    architecture: Literal["llama", "gpt2"] = Field(
        "llama",
        description="Random-init model family: llama (rotary positions, which hold up on prompts longer than the "
        "training ones) or gpt2 (learned absolute positions).",
    )
    hidden_size: int = Field(128, ge=8, le=8192, description="Random init: width of the token states.")
    num_layers: int = Field(2, ge=1, le=64, description="Random init: transformer layers.")
    num_heads: int = Field(4, ge=1, le=64, description="Random init: attention heads; must divide hidden_size.")
    intermediate_size: int = Field(256, ge=1, le=32768, description="Random init: feed-forward width.")
    vocab_size: int = Field(
        2000, ge=300, le=200_000, description="Random init: target size of the BPE vocabulary trained on the data."
    )
    max_length: int = Field(
        512,
        ge=16,
        le=32768,
        description="Most tokens per sequence (prompt, graph tokens and target); a longer prompt loses its start.",
    )
    prompt: str = Field(
        "{text}",
        description="The prompt template: {text} (the sample's text), {graph} (the graph's facts as text, in "
        "breadth-first order from the query's source: 'Anna child Ben.') and {question} (the sample's `question` "
        "field, else the text's last sentence ending in '?'). The graph tokens follow the prompt.",
    )
    evidence: str = Field(
        "",
        description="A second template (same fields as prompt) shown only once the generated text reaches "
        "`evidence_after`: what comes before (the answer) is written from the prompt and the graph tokens alone, "
        "what comes after (the reason) can quote it. Empty: none. A target without the marker gets it first.",
    )
    evidence_after: str = Field(":", min_length=1, description="Where the evidence is shown (see evidence).")
    graph_tokens: int = Field(
        4,
        ge=0,
        le=64,
        description="Soft-prompt length: the query source's and target's states and the mean node state, projected "
        "to this many embeddings placed between the prompt and the answer (0 = none). Without a graph input, none.",
    )
    graph_states: list[Literal["source", "target", "mean"]] = Field(
        default_factory=lambda: ["source", "target", "mean"],
        min_length=1,
        description="Which node states the graph tokens are made from: the query source's, the query target's, the "
        "mean over the graph. A reasoner whose target state holds the whole answer (path-composer) wants "
        "['target']: a mean over a longer graph than any trained on would only mislead.",
    )
    answer_weight: float = Field(
        0.0,
        ge=0,
        description="Weight of an auxiliary loss (the decoder's own objective, reported as `decoder`): a linear "
        "head predicts the sample's label from the graph states the soft prompt reads, where samples carry labels. "
        "It makes the reasoner's states carry the answer, as a classifier's loss would; 0 = off.",
    )
    graph_order: Literal["path", "from_source", "to_source", "stated"] = Field(
        "path",
        description="{graph}'s order: path (the facts along a shortest path from the query's source to its target "
        "first, then the rest breadth-first), from_source (breadth-first from the query's source), to_source "
        "(that list reversed, the source's own facts last, next to the question) or stated (the graph builder's "
        "order, each pair the way it came first: for text-relations, the text's order).",
    )
    max_graph_facts: int = Field(64, ge=1, le=4096, description="Most facts {graph} lists (the nearest first).")
    lora_rank: int = Field(
        0,
        ge=0,
        le=256,
        description="LoRA rank through peft (0 = off). On: the language model's own weights are frozen and only "
        "the adapters and the graph projector train; meant for a pretrained checkpoint.",
    )
    lora_alpha: int = Field(16, ge=1, description="LoRA scaling numerator (the update is scaled by alpha / rank).")
    lora_dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the LoRA adapters' input.")
    lora_targets: list[str] = Field(
        default_factory=list,
        description="Module names LoRA adapts (empty: peft's default for the architecture, e.g. q_proj, v_proj).",
    )
    dropout: float = Field(0.0, ge=0, lt=1, description="Random init: dropout on hidden states and attention.")
    lr_scale: float | None = Field(
        None,
        gt=0,
        description="This stage's learning rate as a multiple of [train] lr (a transformer usually wants a far "
        "smaller one than a GNN); unset: [train] lr.",
    )
    max_new_tokens: int = Field(64, ge=1, le=8192, description="Generation: most new tokens.")
    num_beams: int = Field(1, ge=1, le=64, description="Generation: beam width (1 = greedy or sampling).")
    do_sample: bool = Field(False, description="Generation: sample instead of taking the likeliest token.")
    temperature: float = Field(1.0, gt=0, description="Generation: sampling temperature.")
    top_p: float = Field(1.0, gt=0, le=1, description="Generation: nucleus sampling mass.")
    stop: list[str] = Field(default_factory=list, description="Generation: stop once the text ends with one of these.")

    @field_validator("prompt", "evidence")
    @classmethod
    def _known_fields(cls, value: str) -> str:
        try:
            named = [name for _, name, _, _ in string.Formatter().parse(value) if name is not None]
        except ValueError as exc:
            raise ValueError(f"is not a template ({exc}); write fields as {{text}}, literal braces as {{{{ }}}}")
        unknown = [n for n in named if n not in PROMPT_FIELDS]
        if unknown:
            raise ValueError(f"names unknown field {{{unknown[0]}}}; the fields are " + ", ".join(PROMPT_FIELDS))
        return value

    @model_validator(mode="after")
    def _heads_divide(self) -> "CausalLMConfig":
        if self.pretrained is None and self.hidden_size % self.num_heads:
            raise ValueError(f"num_heads ({self.num_heads}) must divide hidden_size ({self.hidden_size})")
        return self


def _read_samples_and_graph(ctx: BuildContext) -> list[str]:
    """A samples input carrying text (the prompt and, in training, the target) and at most one graph input, which
    declares its node state size; the graph inputs' names."""
    kinds = {name: port.type for name, port in ctx.inputs.items()}
    samples = [n for n, t in kinds.items() if t == "samples"]
    graphs = [n for n, t in kinds.items() if t == "semantic_graph"]
    other = [f"{n} ({t.replace('_', ' ')})" for n, t in kinds.items() if t not in ("samples", "semantic_graph")]
    if other:
        raise PortMismatch(f"reads samples and a semantic graph, not {', '.join(other)}")
    if len(samples) != 1 or "text" not in ctx.inputs[samples[0]].modalities:
        raise PortMismatch(
            "needs the data's text samples as an input (they hold the prompt and the target text): "
            'set decoder.inputs = ["reasoner", "data"]'
        )
    if len(graphs) > 1:
        raise PortMismatch(f"reads at most one semantic graph, got {', '.join(graphs)}")
    if graphs and ctx.inputs[graphs[0]].dim is None:
        raise PortMismatch(f"{graphs[0]} declares no node state size")
    return graphs


def _signature(config: CausalLMConfig, ctx: BuildContext) -> Port:
    """causal-lm reads what :func:`_read_samples_and_graph` says, and a graph where its templates name {graph}."""
    graphs = _read_samples_and_graph(ctx)
    if not graphs and "{graph}" in config.prompt + config.evidence:
        raise PortMismatch(
            "the prompt or evidence names {graph} but no graph input is wired: add the reasoner to decoder.inputs"
        )
    return Port("text")


causal_lm = PluginSpec(
    name="causal-lm",
    kind="decoder",
    config=CausalLMConfig,
    factory="autoglm_lm.causal_lm:CausalLMDecoder",
    summary="Causal language model (transformers, Llama/GPT-2 or a local checkpoint) writing text conditioned on "
    "the graph through soft-prompt tokens and its facts as text; LoRA through peft; greedy, beam, sampling.",
    signature=_signature,
    capabilities=frozenset({"learnable", "task:generate", "task:summarise"}),
)


class SpanExtractorConfig(PluginConfig):
    """A transformers encoder with a span head (BertForQuestionAnswering) that answers the sample's question with
    a span of its text; each person the graph knows lends its reasoned state to the tokens that name them."""

    pretrained: str | None = PathField(
        None,
        description="A local directory with a question-answering checkpoint (or any encoder: the span head then "
        "starts random) and its fast tokenizer, loaded with local_files_only. Unset: a BERT of the size below with "
        "random weights and a byte-level BPE tokenizer trained on the training split.",
    )
    hidden_size: int = Field(128, ge=8, le=8192, description="Random init: width of the token states.")
    num_layers: int = Field(2, ge=1, le=64, description="Random init: transformer layers.")
    num_heads: int = Field(4, ge=1, le=64, description="Random init: attention heads; must divide hidden_size.")
    intermediate_size: int = Field(256, ge=1, le=32768, description="Random init: feed-forward width.")
    vocab_size: int = Field(2000, ge=300, le=200_000, description="Random init: target size of the BPE vocabulary.")
    max_length: int = Field(
        512, ge=16, le=32768, description="Most tokens per sample (question and text); a longer text loses its end."
    )
    max_answer_tokens: int = Field(16, ge=1, le=512, description="Most tokens in an extracted span.")
    graph_features: bool = Field(
        True,
        description="Add each graph node's state, projected, to the embeddings of the tokens that spell its name in "
        "the text (an entity-aware encoder); off, or with no graph input, the text alone.",
    )
    answer_weight: float = Field(
        0.0,
        ge=0,
        description="Weight of an auxiliary loss: a linear head predicts the sample's label (the relation the "
        "question names) from the state of the node the answer names, where samples carry labels. It teaches the "
        "reasoner composition as a classifier would, and lets answer-pretraining train it alone; 0 = off.",
    )
    dropout: float = Field(0.1, ge=0, lt=1, description="Random init: dropout on hidden states and attention.")
    lr_scale: float | None = Field(
        None, gt=0, description="This stage's learning rate as a multiple of [train] lr; unset: [train] lr."
    )

    @model_validator(mode="after")
    def _heads_divide(self) -> "SpanExtractorConfig":
        if self.pretrained is None and self.hidden_size % self.num_heads:
            raise ValueError(f"num_heads ({self.num_heads}) must divide hidden_size ({self.hidden_size})")
        return self


def _span_signature(config: SpanExtractorConfig, ctx: BuildContext) -> Port:
    _read_samples_and_graph(ctx)
    return Port("spans")


span_extractor = PluginSpec(
    name="span-extractor",
    kind="decoder",
    config=SpanExtractorConfig,
    factory="autoglm_lm.span:SpanExtractor",
    summary="Extractive question answering (transformers' BertForQuestionAnswering): the answer is a span of the "
    "text, read with the graph's states on the tokens that name each person.",
    signature=_span_signature,
    capabilities=frozenset({"learnable", "task:extractive-qa"}),
)


class AnswerPretrainingConfig(PluginConfig):
    """Before the pipeline trains, the stages upstream of the decoder (the reasoner) learn alone to classify each
    sample through the decoder's answer head, the language model left out: cheap, so several initialisations can be
    tried and the best on validation kept."""

    epochs: int = Field(30, ge=1, description="Epochs of each try.")
    tries: int = Field(
        1,
        ge=1,
        le=32,
        description="Initialisations tried (the stages and the answer head re-drawn each time); the best on "
        "validation accuracy is kept. An automaton like path-composer can settle with two compositions merged; "
        "a few tries are far cheaper here than [train] restarts, which retrain the language model too.",
    )
    lr: float | None = Field(
        None, gt=0, description="Peak learning rate of its one-cycle schedule (default: train.lr)."
    )
    stages: list[str] = Field(
        default_factory=lambda: ["reasoner"],
        min_length=1,
        description="The stages to pretrain (they must lead to the decoder's graph input).",
    )
    lr_scale_after: float = Field(
        1.0,
        ge=0,
        le=1,
        description="Learning-rate multiplier for the pretrained stages while the language model trains afterwards: "
        "0 freezes them, so the text loss cannot undo what they learned.",
    )


def _answer_pretraining_signature(config: AnswerPretrainingConfig, ctx: BuildContext) -> Port:
    unknown = [s for s in config.stages if s not in ctx.inputs or s in ("data", "decoder")]
    if unknown:
        stages = [k for k in ctx.inputs if k not in ("data", "decoder")]
        raise PortMismatch(f"stages: `{unknown[0]}` is not a stage before the decoder (those: {stages or 'none'})")
    decoder = ctx.inputs.get("decoder")
    if decoder is None or decoder.type not in ("text", "spans"):
        raise PortMismatch(
            'trains through a text decoder\'s answer head: use it with decoder plugin = "causal-lm" or "span-extractor"'
        )
    if ctx.task is not None and ctx.task.num_classes < 2:
        raise PortMismatch("needs samples with class labels (the answer head's targets)")
    return Port("objective")


answer_pretraining = PluginSpec(
    name="answer-pretraining",
    kind="objective",
    config=AnswerPretrainingConfig,
    factory="autoglm_lm.pretraining:AnswerPretraining",
    summary="Before the language model trains, the reasoner learns alone to classify through the decoder's answer "
    "head (best of several initialisations); then optionally frozen.",
    signature=_answer_pretraining_signature,
)
