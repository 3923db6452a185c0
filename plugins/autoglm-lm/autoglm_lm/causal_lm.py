"""``causal-lm``: a causal language model that writes the task's target text, conditioned on the reasoned graph.

Each sample becomes one sequence::

    [prompt tokens] [graph tokens x k] [target tokens] <eos>

* the prompt is the config's template filled with the sample's text, its question and the graph's facts as text
  (``{graph}``: "Anna child Ben." per edge, each related pair once, in ``graph_order``: see :func:`graph_facts`);
* the graph tokens are a soft prompt: the query source's and target's node states and the mean node state
  (``graph_states``), projected by a small MLP into ``k`` input embeddings (the GRetriever recipe). They sit right
  before the answer, so the answer reads them at the same distance whatever the prompt's length;
* training scores the target tokens only (teacher forcing); the projector, and through it the reasoner, learn
  from the same loss. With ``lora_rank`` the language model's weights stay frozen and peft's LoRA adapters train.

Generation is transformers' ``generate`` on the prompt's embeddings: greedy, beam search or sampling, with
``max_new_tokens``, stop strings, the KV cache on or off, and a streamer for one sample at a time.
"""

from __future__ import annotations

import json
import re
from collections import deque
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from autoglm_lm.specs import CausalLMConfig
from autoglm_sdk.plugin import AutoGLMError, BuildContext, InputError, TextOutput, check_graph, stage_seed

PAD, EOS = "<pad>", "<eos>"
TOKENIZER_FILE, CONFIG_FILE = "tokenizer.json", "lm_config.json"
_LAST_QUESTION = re.compile(r"([^.!?]*\?)\s*$")


def question_of(sample: dict[str, Any]) -> str:
    """The sample's ``question`` field, else the last sentence of its text that ends in '?', else ''."""
    question = sample.get("question")
    if isinstance(question, str):
        return question.strip()
    found = _LAST_QUESTION.search(sample.get("text") or "")
    return found.group(1).strip() if found else ""


def graph_facts(graph: Any, type_names: tuple[str, ...], limit: int, order: str = "from_source") -> list[str]:
    """One graph's edges as "head type tail." sentences ("Anna child Ben (male)." where the builder gives node
    attributes), each related pair once (where both directions are edges, the one leading away from the query
    source), in ``order``:

    * ``from_source``: breadth-first from the query source (node order where none is marked);
    * ``to_source``: the same list reversed, so that the source's own facts end it;
    * ``path``: the facts along a shortest path from the query source to its target first, in that order, then
      the rest breadth-first: the subgraph the question is about, retrieved, before everything else;
    * ``stated``: the builder's edge order (text-relations': the text's), each pair as first stated.

    A chain of facts listed as a path is what a small model copies easily; a shuffle is not."""
    n = int(graph.num_nodes)
    names = list(getattr(graph, "node_text", None) or [f"node {i}" for i in range(n)])
    edges = list(zip(graph.edge_index.t().tolist(), graph.edge_type.tolist()))
    neighbours: dict[int, list[int]] = {}
    for (a, b), _ in edges:
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    source, target = (_marked(graph, f"is_{end}") for end in ("source", "target"))
    rank: dict[int, int] = {}
    parent: dict[int, int] = {}
    for start in [*([source] if source is not None else []), *range(n)]:  # every part, the source's first
        if start in rank:
            continue
        rank[start] = len(rank)
        queue = deque([start])
        while queue:
            node = queue.popleft()
            for other in neighbours.get(node, []):
                if other not in rank:
                    rank[other] = len(rank)
                    parent[other] = node
                    queue.append(other)
    kept: dict[tuple[int, int], tuple[int, int, int]] = {}
    for (a, b), kind in edges:
        pair = (a, b) if rank[a] <= rank[b] else (b, a)  # (nearer the source, farther)
        if pair not in kept or (order != "stated" and (a, b) == pair and kept[pair][:2] != pair):
            kept[pair] = (a, b, kind)  # the first edge, or (but in stated order) the first leading away
    ordered = sorted(kept, key=lambda pair: (rank[pair[0]], rank[pair[1]]))
    if order == "stated":  # dicts keep insertion order: the builder's, which is the text's
        ordered = list(kept)
    if order == "path" and source is not None and target is not None and target in parent:
        path, node = [], target
        while node != source:  # a breadth-first tree's branch is a shortest path
            path.append((parent[node], node))
            node = parent[node]
        path.reverse()
        ordered = path + [pair for pair in ordered if pair not in set(path)]
    elif order == "to_source":
        ordered.reverse()
    name = lambda t: type_names[t] if t < len(type_names) else f"type {t}"  # noqa: E731
    attributes = list(getattr(graph, "node_attributes", None) or [{}] * n)
    # what the builder knows of a fact's tail (its gender) follows it: the words for a relative depend on it
    tail = lambda b: f" ({', '.join(map(str, attributes[b].values()))})" if attributes[b] else ""  # noqa: E731
    return [f"{names[a]} {name(kind)} {names[b]}{tail(b)}." for a, b, kind in (kept[pair] for pair in ordered[:limit])]


def split_inputs(decoder: Any, inputs: Any) -> tuple[list[dict[str, Any]], Any]:
    """A text decoder's input (``{graph_key: graph, data_key: samples}``, or the samples alone) as (samples, the
    batched graph or None), checked: one graph per sample, of the declared state size."""
    who, data_key, graph_key = decoder.name, decoder.data_key, decoder.graph_key
    if isinstance(inputs, dict) and data_key in inputs:
        samples, graph = inputs[data_key], inputs.get(graph_key) if graph_key else None
    else:
        samples, graph = inputs, None
    if not isinstance(samples, list) or not all(isinstance(s, dict) for s in samples):
        raise InputError(f"{who}: expected a list of samples, got {type(samples).__name__}")
    if graph_key and graph is None:
        raise InputError(f"{who}: expected the graph from `{graph_key}` beside the samples")
    if graph is not None:
        check_graph(graph, dim=decoder.graph_dim, who=who)
        graphs = int(graph.batch.max()) + 1 if getattr(graph, "batch", None) is not None else 1
        if graphs != len(samples):
            raise InputError(f"{who}: {graphs} graphs for {len(samples)} samples")
    return samples, graph


def _marked(graph: Any, mask_name: str) -> int | None:
    mask = getattr(graph, mask_name, None)
    return int(mask.nonzero()[0]) if mask is not None and bool(mask.any()) else None


def train_tokenizer(texts: list[str], vocab_size: int) -> Any:
    """A byte-level BPE tokenizer learned from ``texts`` (any text encodes; no unknown tokens), wrapped for
    transformers; the same texts give the same one."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    return _wrap(tokenizer)


def model_files(model_config: Any, tokenizer: Any) -> dict[str, bytes]:
    """A transformers model's config and its fast tokenizer as artifact files (the weights go with the stage's)."""
    end = tokenizer.eos_token or tokenizer.sep_token
    saved = {"config": model_config.to_dict(), "pad": tokenizer.pad_token, "eos": end}
    return {TOKENIZER_FILE: tokenizer.backend_tokenizer.to_str().encode(), CONFIG_FILE: json.dumps(saved).encode()}


def read_model_files(files: dict[str, bytes], who: str) -> tuple[Any, Any]:
    """(model config, tokenizer) from :func:`model_files`' files; an AutoGLMError naming ``who`` if unreadable."""
    from tokenizers import Tokenizer
    from transformers import AutoConfig

    try:
        saved = json.loads(files[CONFIG_FILE])
        tokenizer = _wrap(Tokenizer.from_str(files[TOKENIZER_FILE].decode()), saved["pad"], saved["eos"])
        settings = dict(saved["config"])
        return AutoConfig.for_model(settings.pop("model_type"), **settings), tokenizer
    except Exception as exc:  # tokenizers raises plain Exceptions on bad JSON
        raise AutoGLMError(
            f"{who}: unreadable model files in the artifact: {type(exc).__name__}: {exc}", hint="rebuild the artifact"
        ) from exc


def _wrap(tokenizer: Any, pad: str = PAD, eos: str = EOS) -> Any:
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token=pad, eos_token=eos)


class _TextStreamer:
    """A transformers streamer (``put`` / ``end``) that decodes the new tokens of one sequence as they come and
    hands each new piece of text to ``on_text``. Generation first puts the prompt, which is embeddings here and
    comes as an empty tensor."""

    def __init__(self, tokenizer: Any, on_text: Callable[[str], None]) -> None:
        self.tokenizer, self.on_text = tokenizer, on_text
        self.tokens: list[int] = []
        self.shown = 0

    def put(self, value: torch.Tensor) -> None:
        if value.dim() > 1 and value.size(0) > 1:
            raise InputError("causal-lm: streaming works one sample at a time")
        self.tokens += value.reshape(-1).tolist()
        text = self.tokenizer.decode(self.tokens, skip_special_tokens=True)
        if len(text) > self.shown and not text.endswith("\ufffd"):  # a split character waits for its last byte
            self.on_text(text[self.shown :])
            self.shown = len(text)

    def end(self) -> None:
        text = self.tokenizer.decode(self.tokens, skip_special_tokens=True)
        if len(text) > self.shown:
            self.on_text(text[self.shown :])
        self.tokens, self.shown = [], 0


class CausalLMDecoder(nn.Module):
    name = "causal-lm"
    kind = "decoder"
    Config = CausalLMConfig

    def __init__(self, config: CausalLMConfig, ctx: BuildContext) -> None:
        super().__init__()
        self.config = config
        self.graph_key = next((k for k, p in ctx.inputs.items() if p.type == "semantic_graph"), None)
        self.data_key = next((k for k, p in ctx.inputs.items() if p.type == "samples"), None)
        graph_port = ctx.inputs.get(self.graph_key) if self.graph_key else None
        self.graph_dim = graph_port.dim if graph_port else None
        self.type_names = tuple(graph_port.edge_type_names) if graph_port else ()
        self.target_field = (ctx.task.target if ctx.task is not None else "") or "target"
        self.seed = stage_seed(ctx)
        self.lr_scale = config.lr_scale
        self.tokenizer: Any = None
        self.lm: nn.Module | None = None
        self.projector: nn.Module | None = None
        self.source = ""
        self.truncated = 0
        self.num_labels = ctx.task.num_classes if ctx.task is not None else 0
        self.answer_head: nn.Module | None = None
        self._answer_loss: torch.Tensor | None = None

    # ------------------------------------------------------------ building

    def fit(self, dataset: Any) -> None:
        """Load the pretrained checkpoint, or train a tokenizer on the training prompts and targets and make a
        model of ``architecture`` with random weights."""
        if self.config.pretrained:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            where = self.config.pretrained
            try:
                tokenizer = AutoTokenizer.from_pretrained(where, local_files_only=True)
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(self.seed)
                    lm = AutoModelForCausalLM.from_pretrained(where, local_files_only=True)
            except (OSError, ValueError) as exc:
                raise AutoGLMError(
                    f"causal-lm: cannot load a causal language model from {where}: {exc}".splitlines()[0],
                    hint="point decoder.pretrained at a directory written by save_pretrained (config.json, "
                    "weights, tokenizer)",
                ) from exc
            if not getattr(tokenizer, "is_fast", False):
                raise AutoGLMError(f"causal-lm: the tokenizer in {where} has no fast (tokenizers) version")
            if tokenizer.pad_token is None:  # GPT-2 style checkpoints: padding is masked out, any id will do
                tokenizer.pad_token = tokenizer.eos_token
            self._install(lm, tokenizer, f"pretrained {where}")
            return
        train = dataset.splits.get("train") or []
        texts = [self.prompt(s, None, with_graph=False) for s in train]
        texts += [s[self.target_field] for s in train if isinstance(s.get(self.target_field), str)]
        if "{graph}" in self.config.prompt + self.config.evidence and self.type_names:
            texts.append(" ".join(self.type_names))  # the edge type names {graph} writes
        tokenizer = train_tokenizer(texts, self.config.vocab_size)
        self._install(self._new_lm(tokenizer), tokenizer, f"byte-level BPE trained on {len(texts)} texts")

    def _new_lm(self, tokenizer: Any, lm_config: Any = None) -> nn.Module:
        from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

        c = self.config
        if lm_config is None:
            ids = {"pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id}
            if c.architecture == "llama":
                lm_config = LlamaConfig(
                    vocab_size=len(tokenizer),
                    hidden_size=c.hidden_size,
                    intermediate_size=c.intermediate_size,
                    num_hidden_layers=c.num_layers,
                    num_attention_heads=c.num_heads,
                    num_key_value_heads=c.num_heads,
                    max_position_embeddings=c.max_length,
                    attention_dropout=c.dropout,
                    tie_word_embeddings=True,
                    bos_token_id=tokenizer.eos_token_id,
                    **ids,
                )
            else:
                lm_config = GPT2Config(
                    vocab_size=len(tokenizer),
                    n_positions=c.max_length,
                    n_embd=c.hidden_size,
                    n_layer=c.num_layers,
                    n_head=c.num_heads,
                    n_inner=c.intermediate_size,
                    resid_pdrop=c.dropout,
                    embd_pdrop=c.dropout,
                    attn_pdrop=c.dropout,
                    bos_token_id=tokenizer.eos_token_id,
                    **ids,
                )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return AutoModelForCausalLM.from_config(lm_config)

    def _install(self, lm: nn.Module, tokenizer: Any, source: str) -> None:
        """Adopt ``lm`` and its tokenizer: LoRA adapters when asked, then the graph projector."""
        c = self.config
        self.tokenizer, self.source = tokenizer, source
        if c.lora_rank:
            from peft import LoraConfig, get_peft_model

            adapters = LoraConfig(
                r=c.lora_rank,
                lora_alpha=c.lora_alpha,
                lora_dropout=c.lora_dropout,
                target_modules=list(c.lora_targets) or None,
                task_type="CAUSAL_LM",
            )
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed + 1)
                try:
                    lm = get_peft_model(lm, adapters)
                except ValueError as exc:
                    raise AutoGLMError(
                        f"causal-lm: LoRA cannot adapt this model: {exc}".splitlines()[0],
                        hint="name the modules to adapt in decoder.lora_targets (e.g. ['q_proj', 'v_proj'])",
                    ) from exc
        self.lm = lm
        width = self.core.get_input_embeddings().embedding_dim
        if self.graph_dim and c.graph_tokens:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed + 2)
                read = len(c.graph_states) * self.graph_dim
                self.projector = nn.Sequential(
                    nn.Linear(read, width), nn.GELU(), nn.Linear(width, c.graph_tokens * width)
                )
                if c.answer_weight and self.num_labels:
                    self.answer_head = nn.Linear(read, self.num_labels)
        device = next((p.device for p in self.parameters()), torch.device("cpu"))
        self.to(device)

    @property
    def core(self) -> nn.Module:
        """The transformers model itself (under peft's wrapper when LoRA is on; the adapters sit inside it)."""
        lm = self._require()
        return lm.get_base_model() if hasattr(lm, "get_base_model") else lm

    def _require(self) -> nn.Module:
        if self.lm is None:
            raise AutoGLMError("causal-lm: the model is not made yet", hint="fit() it to data or load an artifact")
        return self.lm

    def artifact_files(self) -> dict[str, bytes]:
        self._require()
        return model_files(self.core.config, self.tokenizer)

    def load_artifact_files(self, files: dict[str, bytes]) -> None:
        lm_config, tokenizer = read_model_files(files, self.name)
        self._install(self._new_lm(tokenizer, lm_config), tokenizer, "read from the artifact")

    def report(self) -> dict[str, Any]:
        lm = self._require()
        return {
            "model": self.source,
            "architecture": self.core.config.model_type,
            "vocab_size": len(self.tokenizer),
            "parameters": sum(p.numel() for p in lm.parameters()),
            "trainable_parameters": sum(p.numel() for p in self.parameters() if p.requires_grad),
            "lora_rank": self.config.lora_rank,
            "graph_tokens": self.config.graph_tokens if self.projector is not None else 0,
            "truncated_prompts": self.truncated,
        }

    # ------------------------------------------------------------- inputs

    def fields(self, sample: dict[str, Any], graph: Any, *, with_graph: bool = True) -> dict[str, str]:
        """The template fields of one sample (``graph``: its unbatched graph, or None)."""
        text = sample.get("text")
        if not isinstance(text, str):
            raise InputError(f"causal-lm: a sample has no `text` (a string); its keys: {sorted(sample)}")
        c = self.config
        facts = graph_facts(graph, self.type_names, c.max_graph_facts, c.graph_order) if graph is not None else []
        return {"text": text, "question": question_of(sample), "graph": " ".join(facts) if with_graph else ""}

    def prompt(self, sample: dict[str, Any], graph: Any, *, with_graph: bool = True) -> str:
        """The prompt template filled for one sample."""
        return self.config.prompt.format(**self.fields(sample, graph, with_graph=with_graph))

    def _split(self, inputs: Any) -> tuple[list[dict[str, Any]], Any]:
        return split_inputs(self, inputs)

    def auxiliary_loss(self) -> torch.Tensor | None:
        """The answer head's weighted cross-entropy from the last forward pass (``answer_weight``), or None."""
        return self._answer_loss

    def _query_states(self, graph: Any, count: int) -> torch.Tensor:
        """``[B, len(graph_states) * dim]``: the ``graph_states`` (query source, target, mean) of each graph."""
        from torch_geometric.nn import global_mean_pool

        x = graph.x
        batch = getattr(graph, "batch", None)
        if batch is None:
            batch = torch.zeros(x.size(0), dtype=torch.long, device=x.device)
        pooled = global_mean_pool(x, batch, size=count)
        parts = []
        for name in self.config.graph_states:
            if name == "mean":
                parts.append(pooled)
                continue
            mask = getattr(graph, f"is_{name}", None)
            rows = torch.zeros_like(pooled)  # a graph with no marked node reads zeros
            if mask is not None and bool(mask.any()):  # one marked node per graph (the last one where several)
                rows = rows.index_copy(0, batch[mask.bool()], x[mask.bool()])
            parts.append(rows)
        return torch.cat(parts, dim=-1)

    def answer_logits(self, inputs: Any) -> torch.Tensor:
        """``[B, num_classes]``: the answer head on the query's states, the language model left out (what
        ``answer-pretraining`` trains the reasoner through)."""
        samples, graph = self._split(inputs)
        if self.answer_head is None or graph is None:
            raise AutoGLMError(
                "causal-lm: no answer head to score",
                hint="the decoder needs a graph input, graph_tokens > 0, answer_weight > 0 and a labelled task",
            )
        return self.answer_head(self._query_states(graph, len(samples)))

    def _soft_prompt(self, graph: Any, count: int, samples: list[dict[str, Any]] | None = None) -> torch.Tensor | None:
        """``[B, graph_tokens, width]``: the query's states through the projector. Given the samples (training),
        the answer head scores the same states against their labels."""
        self._answer_loss = None
        if self.projector is None or graph is None:
            return None
        states = self._query_states(graph, count)
        labelled = [i for i, s in enumerate(samples or []) if isinstance(s.get("label"), int)]
        if self.answer_head is not None and labelled:
            rows = torch.tensor(labelled, device=states.device)
            gold = torch.tensor([samples[i]["label"] for i in labelled], device=states.device)
            logits = self.answer_head(states[rows]).float()
            self._answer_loss = self.config.answer_weight * F.cross_entropy(logits, gold)
        width = self.core.get_input_embeddings().embedding_dim
        return self.projector(states).view(count, self.config.graph_tokens, width)

    def _assemble(
        self,
        samples: list[dict[str, Any]],
        graphs: list[Any],
        soft: torch.Tensor | None,
        *,
        with_targets: bool,
        answers: list[str] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Left-padded input embeddings, attention mask and (with targets) labels (-100 off the target).

        Each row is ``[prompt][graph tokens][target]``; with ``evidence``, the evidence follows the target's first
        part (up to ``evidence_after``), unscored. ``answers`` (generation's second phase) is each sample's text so
        far, up to the marker: the row then ends with it and the evidence."""
        c = self.config
        tok = self.tokenizer
        encode = lambda text: tok(text, add_special_tokens=False)["input_ids"] if text else []  # noqa: E731
        embedding = self.core.get_input_embeddings()
        device = embedding.weight.device
        k = 0 if soft is None else soft.size(1)
        rows, labels = [], []
        for i, sample in enumerate(samples):
            fields = self.fields(sample, graphs[i] if "{graph}" in c.prompt + c.evidence else None)
            evidence = encode(c.evidence.format(**fields)) if c.evidence else []
            after: list[tuple[list[int], bool]] = []  # (ids, scored) after the graph tokens
            target = sample.get(self.target_field) if with_targets else None
            if answers is not None:
                after = [(encode(answers[i]), False), (evidence, False)]
            elif isinstance(target, str):
                target = target.strip()
                cut = target.find(c.evidence_after) if evidence else -1
                if cut >= 0:  # the answer first, unable to see the evidence; the rest reads it
                    cut += len(c.evidence_after)
                    after = [(encode(target[:cut]), True), (evidence, False), (encode(target[cut:]), True)]
                else:
                    after = [(evidence, False), (encode(target), True)]
                after.append(([tok.eos_token_id], True))
            prompt = encode(c.prompt.format(**fields))
            room = c.max_length - k - sum(len(ids) for ids, _ in after)
            if room < 1:
                raise InputError(
                    f"causal-lm: the target and evidence take {c.max_length - room - k} tokens, more than "
                    f"max_length {c.max_length} allows",
                    hint="raise decoder.max_length",
                )
            if len(prompt) > room:  # keep the end of the prompt: the question is there
                prompt = prompt[len(prompt) - room :]
                self.truncated += 1
            parts = [embedding(torch.tensor(prompt, dtype=torch.long, device=device))]
            gold = [-100] * len(prompt)
            if soft is not None:
                parts.append(soft[i].to(parts[0].dtype))
                gold += [-100] * k
            for ids, scored in after:
                if ids:
                    parts.append(embedding(torch.tensor(ids, dtype=torch.long, device=device)))
                    gold += ids if scored else [-100] * len(ids)
            rows.append(torch.cat(parts))
            labels.append(gold)
        length = max(r.size(0) for r in rows)
        embeds = rows[0].new_zeros(len(rows), length, rows[0].size(1))
        mask = torch.zeros(len(rows), length, dtype=torch.long, device=device)
        gold_ids = torch.full((len(rows), length), -100, dtype=torch.long, device=device)
        for i, row in enumerate(rows):
            embeds[i, length - row.size(0) :] = row
            mask[i, length - row.size(0) :] = 1
            gold_ids[i, length - row.size(0) :] = torch.tensor(labels[i], dtype=torch.long, device=device)
        return embeds, mask, gold_ids if with_targets else None

    def _graphs(self, graph: Any, count: int) -> list[Any]:
        needed = graph is not None and "{graph}" in self.config.prompt + self.config.evidence
        return [graph.get_example(i) for i in range(count)] if needed else [None] * count

    # ------------------------------------------------------------ running

    def forward(self, inputs: Any) -> TextOutput:
        samples, graph = self._split(inputs)
        soft = self._soft_prompt(graph, len(samples), samples)
        embeds, mask, gold = self._assemble(samples, self._graphs(graph, len(samples)), soft, with_targets=True)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = self.core(inputs_embeds=embeds, attention_mask=mask, position_ids=positions).logits
        predicted, wanted = logits[:, :-1], gold[:, 1:]
        scored = wanted != -100
        count = int(scored.sum())
        if count:
            loss = F.cross_entropy(predicted[scored].float(), wanted[scored])
            correct = int((predicted[scored].argmax(-1) == wanted[scored]).sum())
        else:  # no sample carries target text (inference): nothing to score
            loss, correct = logits.sum() * 0.0, 0
        return TextOutput(loss, correct, count, logits)

    @torch.no_grad()
    def generate(self, inputs: Any, **options: Any) -> list[str]:
        """One generated text per sample. Options override the config's: ``max_new_tokens``, ``min_new_tokens``
        (the end-of-text token is held back until then: fixed-length timing), ``num_beams``,
        ``do_sample``, ``temperature``, ``top_p``, ``stop`` (strings), ``use_cache`` (default True) and
        ``on_text`` (a callback receiving each new piece of text, and a line break when a text ends; one sample at a
        time)."""
        c = self.config
        unknown = set(options) - {
            "max_new_tokens", "min_new_tokens", "num_beams", "do_sample", "temperature", "top_p", "stop", "use_cache",
            "on_text",
        }  # fmt: skip
        if unknown:
            raise InputError(f"causal-lm: unknown generation option {sorted(unknown)[0]!r}")
        samples, graph = self._split(inputs)
        soft = self._soft_prompt(graph, len(samples))
        graphs = self._graphs(graph, len(samples))
        stop = list(options.get("stop", c.stop))
        marker = c.evidence_after if c.evidence else ""
        sample = bool(options.get("do_sample", c.do_sample))
        budget = int(options.get("max_new_tokens", c.max_new_tokens))
        least = min(int(options.get("min_new_tokens", 0)), budget)
        settings: dict[str, Any] = {
            "num_beams": int(options.get("num_beams", c.num_beams)),
            "do_sample": sample,
            "use_cache": bool(options.get("use_cache", True)),
            "eos_token_id": self.tokenizer.eos_token_id,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if sample:
            settings.update(temperature=float(options.get("temperature", c.temperature)))
            settings.update(top_p=float(options.get("top_p", c.top_p)))
        else:  # the checkpoint's own sampling defaults would only warn under greedy or beam search
            settings.update(temperature=None, top_p=None, top_k=None)
        on_text = options.get("on_text")
        was_training = self.training
        self.eval()
        try:
            embeds, mask, _ = self._assemble(samples, graphs, soft, with_targets=False)
            first = self._run_generate(
                embeds, mask, (least, budget), [*stop, *([marker] if marker else [])], on_text, settings
            )
            texts = [_cut(t, stop) for t in first]
            # the answer reached the marker (and no stop string): show the evidence, then write the rest
            more = [i for i, t in enumerate(first) if marker and t.rstrip().endswith(marker) and _cut(t, stop) == t]
            used = max((len(self.tokenizer(first[i])["input_ids"]) for i in more), default=0)
            if more and budget > used:
                rows = torch.tensor(more, device=embeds.device)
                embeds, mask, _ = self._assemble(
                    [samples[i] for i in more],
                    [graphs[i] for i in more],
                    None if soft is None else soft[rows],
                    with_targets=False,
                    answers=[first[i].rstrip() for i in more],
                )
                rest = self._run_generate(embeds, mask, (max(least - used, 0), budget - used), stop, on_text, settings)
                for i, text in zip(more, rest):
                    texts[i] = first[i].rstrip() + _cut(text, stop)
            if on_text is not None:
                on_text("\n")  # a text ends with a line break
        finally:
            self.train(was_training)
        return [text.strip() for text in texts]

    def _run_generate(
        self,
        embeds: torch.Tensor,
        mask: torch.Tensor,
        budget: tuple[int, int],
        stop: list[str],
        on_text: Any,
        settings: dict,
    ) -> list[str]:
        """The new text of each row from prompt embeddings (``budget``: least and most new tokens). Beam search is
        transformers' ``generate``; greedy and sampling are :meth:`_decode`, because transformers always keeps the
        KV cache when it generates from embeddings, and ``use_cache = False`` must mean what it says."""
        if on_text is not None and embeds.size(0) > 1:
            raise InputError("causal-lm: streaming works one sample at a time", hint="generate for one sample")
        streamer = _TextStreamer(self.tokenizer, on_text) if on_text is not None else None
        if settings["num_beams"] == 1:
            ids = self._decode(embeds, mask, budget, stop, streamer, settings)
            return self.tokenizer.batch_decode(ids, skip_special_tokens=True)
        if not settings["use_cache"]:
            raise InputError("causal-lm: beam search runs with the KV cache only", hint="drop use_cache=False")
        extra: dict[str, Any] = {"min_new_tokens": budget[0], "max_new_tokens": budget[1]}
        if stop:
            extra.update(stop_strings=stop, tokenizer=self.tokenizer)
        if streamer is not None:
            extra["streamer"] = streamer
        out = self.core.generate(inputs_embeds=embeds, attention_mask=mask, **settings, **extra)
        return self.tokenizer.batch_decode(out, skip_special_tokens=True)

    def _decode(
        self,
        embeds: torch.Tensor,
        mask: torch.Tensor,
        budget: tuple[int, int],
        stop: list[str],
        streamer: Any,
        settings: dict,
    ) -> torch.Tensor:
        """Greedy or sampled decoding, one token per step for every row: ``[B, new]`` ids, padding after a row's
        end (end of text, or a stop string at the end of its text). With ``use_cache`` each step feeds the new
        token alone and the model's cache; without, the whole sequence again (the cost the cache saves)."""
        import inspect

        core, tok = self.core, self.tokenizer
        least, most = budget
        cached = bool(settings["use_cache"])
        cache_name = "cache" if "cache" in inspect.signature(core.forward).parameters else "past_key_values"
        embedding = core.get_input_embeddings()
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        rows = embeds.size(0)
        done = torch.zeros(rows, dtype=torch.bool, device=embeds.device)
        new: list[torch.Tensor] = []
        step_inputs, step_positions, cache = embeds, positions, None
        for step in range(most):
            extra = {cache_name: cache} if cached and cache is not None else {}
            out = core(
                inputs_embeds=step_inputs if cached else embeds,
                attention_mask=mask,
                position_ids=step_positions if cached else positions,
                use_cache=cached,
                logits_to_keep=1,
                **extra,
            )
            if cached:
                cache = getattr(out, cache_name, None)
            logits = out.logits[:, -1].float()
            if step < least:
                logits[:, tok.eos_token_id] = float("-inf")
            chosen = _pick(logits, settings)
            chosen = torch.where(done, torch.full_like(chosen, tok.pad_token_id), chosen)
            new.append(chosen)
            if streamer is not None:
                streamer.put(chosen[:1])
            done |= chosen == tok.eos_token_id
            if stop:
                texts = tok.batch_decode(torch.stack(new, 1), skip_special_tokens=True)
                done |= torch.tensor([any(t.endswith(s) for s in stop) for t in texts], device=done.device)
            if bool(done.all()):
                break
            step_inputs = embedding(chosen)[:, None].to(embeds.dtype)
            step_positions = positions[:, -1:] + 1
            embeds = torch.cat([embeds, step_inputs], 1)
            positions = torch.cat([positions, step_positions], 1)
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
        if streamer is not None:
            streamer.end()
        return torch.stack(new, 1) if new else torch.zeros(rows, 0, dtype=torch.long, device=embeds.device)


def _pick(logits: torch.Tensor, settings: dict) -> torch.Tensor:
    """The next token of each row: the likeliest, or (``do_sample``) drawn from the distribution at
    ``temperature``, cut to the smallest set of tokens holding ``top_p`` of the mass."""
    if not settings["do_sample"]:
        return logits.argmax(-1)
    probs = torch.softmax(logits / settings["temperature"], -1)
    if settings["top_p"] < 1:
        ordered, order = probs.sort(-1, descending=True)
        outside = ordered.cumsum(-1) - ordered > settings["top_p"]  # the mass before a token already reaches top_p
        probs = probs.scatter(-1, order, ordered.masked_fill(outside, 0.0))
    return torch.multinomial(probs, 1).squeeze(-1)


def _cut(text: str, stop: list[str]) -> str:
    """``text`` up to its first stop string (generation halts after one; the stop string is not part of the
    answer)."""
    ends = [text.find(s) for s in stop if s and s in text]
    return text[: min(ends)] if ends else text
