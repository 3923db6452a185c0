"""``span-extractor``: extractive question answering over the sample's text, conditioned on the reasoned graph.

Each sample is one left-padded sequence ``[question] <sep> [text]`` through transformers'
``BertForQuestionAnswering`` (random init from a config, or a local checkpoint), whose head scores every token as
the start and as the end of the answer. The graph enters token by token: every node the graph builder named
(``node_text``) lends its reasoned state, projected to the token width, to the embeddings of each token that spells
that name in the text. A reasoner that composed each person's relation to the question's source (path-composer)
thereby tells the encoder who is whose grandmother, and the span head only has to match the question's relation
word; without a graph the encoder must compose the relations over the text itself.

Training scores the start and end over the text's tokens against every occurrence of the target (a name a story
states three times is right at any of them): the loss is the negative log of the probability mass on the gold
positions. The answer is the best-scoring span (start before end, at most ``max_answer_tokens`` long), read back
from the text by the tokens' character offsets.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import torch
from torch import nn

from autoglm_lm.causal_lm import model_files, question_of, read_model_files, split_inputs, train_tokenizer
from autoglm_lm.specs import SpanExtractorConfig
from autoglm_sdk.plugin import AutoGLMError, BuildContext, DataError, InputError, TextOutput, stage_seed


class SpanExtractor(nn.Module):
    name = "span-extractor"
    kind = "decoder"
    Config = SpanExtractorConfig

    def __init__(self, config: SpanExtractorConfig, ctx: BuildContext) -> None:
        super().__init__()
        self.config = config
        self.graph_key = next((k for k, p in ctx.inputs.items() if p.type == "semantic_graph"), None)
        self.data_key = next((k for k, p in ctx.inputs.items() if p.type == "samples"), None)
        graph_port = ctx.inputs.get(self.graph_key) if self.graph_key else None
        self.graph_dim = graph_port.dim if graph_port else None
        self.target_field = (ctx.task.target if ctx.task is not None else "") or "target"
        self.seed = stage_seed(ctx)
        self.lr_scale = config.lr_scale
        self.tokenizer: Any = None
        self.qa: nn.Module | None = None
        self.projector: nn.Module | None = None
        self.source = ""
        self.truncated = 0
        self.num_labels = ctx.task.num_classes if ctx.task is not None else 0
        self.answer_head: nn.Module | None = None
        self._answer_loss: torch.Tensor | None = None

    # ------------------------------------------------------------ building

    def fit(self, dataset: Any) -> None:
        """Load the checkpoint, or train a tokenizer on the training texts and questions and make a BERT with
        random weights."""
        c = self.config
        if c.pretrained:
            from transformers import AutoModelForQuestionAnswering, AutoTokenizer

            try:
                tokenizer = AutoTokenizer.from_pretrained(c.pretrained, local_files_only=True)
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(self.seed)
                    qa = AutoModelForQuestionAnswering.from_pretrained(c.pretrained, local_files_only=True)
            except (OSError, ValueError) as exc:
                raise AutoGLMError(
                    f"span-extractor: cannot load a model from {c.pretrained}: {exc}".splitlines()[0],
                    hint="point decoder.pretrained at a directory written by save_pretrained (config.json, "
                    "weights, tokenizer)",
                ) from exc
            if not getattr(tokenizer, "is_fast", False):
                raise AutoGLMError(f"span-extractor: the tokenizer in {c.pretrained} has no fast version")
            self._install(qa, tokenizer, f"pretrained {c.pretrained}")
            return
        train = dataset.splits.get("train") or []
        texts = [s["text"] for s in train if isinstance(s.get("text"), str)]
        texts += [question_of(s) for s in train]
        tokenizer = train_tokenizer(texts, c.vocab_size)
        self._install(self._new_model(tokenizer), tokenizer, f"byte-level BPE trained on {len(texts)} texts")

    def _new_model(self, tokenizer: Any, model_config: Any = None) -> nn.Module:
        from transformers import AutoModelForQuestionAnswering, BertConfig

        c = self.config
        if model_config is None:
            model_config = BertConfig(
                vocab_size=len(tokenizer),
                hidden_size=c.hidden_size,
                num_hidden_layers=c.num_layers,
                num_attention_heads=c.num_heads,
                intermediate_size=c.intermediate_size,
                max_position_embeddings=c.max_length,
                hidden_dropout_prob=c.dropout,
                attention_probs_dropout_prob=c.dropout,
                pad_token_id=tokenizer.pad_token_id,
                num_labels=2,
            )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return AutoModelForQuestionAnswering.from_config(model_config)

    def _install(self, qa: nn.Module, tokenizer: Any, source: str) -> None:
        self.qa, self.tokenizer, self.source = qa, tokenizer, source
        width = qa.get_input_embeddings().embedding_dim
        if self.graph_dim and self.config.graph_features:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed + 1)
                self.projector = nn.Sequential(nn.Linear(self.graph_dim, width), nn.GELU(), nn.Linear(width, width))
                if self.config.answer_weight and self.num_labels:
                    self.answer_head = nn.Linear(self.graph_dim, self.num_labels)
        device = next((p.device for p in self.parameters()), torch.device("cpu"))
        self.to(device)

    def _require(self) -> nn.Module:
        if self.qa is None:
            raise AutoGLMError("span-extractor: the model is not made yet", hint="fit() it to data or load an artifact")
        return self.qa

    def artifact_files(self) -> dict[str, bytes]:
        return model_files(self._require().config, self.tokenizer)

    def load_artifact_files(self, files: dict[str, bytes]) -> None:
        model_config, tokenizer = read_model_files(files, self.name)
        self._install(self._new_model(tokenizer, model_config), tokenizer, "read from the artifact")

    def report(self) -> dict[str, Any]:
        qa = self._require()
        return {
            "model": self.source,
            "architecture": qa.config.model_type,
            "vocab_size": len(self.tokenizer),
            "parameters": sum(p.numel() for p in qa.parameters()),
            "graph_features": self.projector is not None,
            "truncated_texts": self.truncated,
        }

    # ------------------------------------------------------------- inputs

    def _encode(self, samples: list[dict[str, Any]], graph: Any) -> dict[str, Any]:
        """Left-padded ids, mask, token types and positions; per row the text's first token, each token's
        character span in the text, and the node whose name each token spells (-1: none), as a batched node
        index."""
        tok, c = self.tokenizer, self.config
        sep = tok.sep_token_id if tok.sep_token_id is not None else tok.eos_token_id
        texts = [s.get("text") for s in samples]
        nodes = _name_spans(graph, texts) if self.projector is not None and graph is not None else None
        rows: list[tuple[list[int], list[int], int, list[tuple[int, int]], list[int]]] = []
        for i, sample in enumerate(samples):
            text = sample.get("text")
            if not isinstance(text, str):
                raise InputError(f"span-extractor: a sample has no `text` (a string); its keys: {sorted(sample)}")
            question = tok(question_of(sample), add_special_tokens=False)["input_ids"]
            body = tok(text, add_special_tokens=False, return_offsets_mapping=True)
            room = c.max_length - len(question) - 1
            if room < 1:
                raise InputError(f"span-extractor: the question alone takes more than max_length {c.max_length}")
            ids, offsets = body["input_ids"][:room], [tuple(o) for o in body["offset_mapping"][:room]]
            self.truncated += len(body["input_ids"]) > room
            owner = [-1] * len(ids)
            for node, start, end in nodes[i] if nodes is not None else []:
                for j, (a, b) in enumerate(offsets):
                    if a < end and start < b:
                        owner[j] = node
            sequence = [*question, sep, *ids]  # the text last: left padding lines the texts' ends up
            first = len(question) + 1
            rows.append((sequence, [0] * first + [1] * len(ids), first, offsets, [-1] * first + owner))
        length = max(len(r[0]) for r in rows)
        device = self._require().get_input_embeddings().weight.device
        pad = lambda values, fill: [fill] * (length - len(values)) + values  # noqa: E731
        mask = torch.tensor([pad([1] * len(r[0]), 0) for r in rows], device=device)
        return {
            "ids": torch.tensor([pad(r[0], tok.pad_token_id) for r in rows], device=device),
            "mask": mask,
            "types": torch.tensor([pad(r[1], 0) for r in rows], device=device),
            "positions": (mask.cumsum(-1) - 1).clamp(min=0),
            "owner": torch.tensor([pad(r[4], -1) for r in rows], device=device),
            "first": [length - len(r[0]) + r[2] for r in rows],  # the text's first token, after padding
            "offsets": [r[3] for r in rows],
        }

    def _logits(self, graph: Any, batch: dict[str, Any]) -> torch.Tensor:
        """``[B, L, 2]`` start and end scores; -inf off the text's tokens."""
        qa = self._require()
        embeds = qa.get_input_embeddings()(batch["ids"])
        owner = batch["owner"]
        if self.projector is not None and graph is not None and bool((owner >= 0).any()):
            lent = self.projector(graph.x)[owner.clamp(min=0)].to(embeds.dtype)
            embeds = embeds + lent * (owner >= 0).unsqueeze(-1).to(embeds.dtype)
        out = qa(
            inputs_embeds=embeds,
            attention_mask=batch["mask"],
            token_type_ids=batch["types"],
            position_ids=batch["positions"],
        )
        logits = torch.stack([out.start_logits, out.end_logits], -1)
        valid = torch.zeros_like(batch["mask"], dtype=torch.bool)
        for i, (first, offsets) in enumerate(zip(batch["first"], batch["offsets"])):
            valid[i, first : first + len(offsets)] = True
        return logits.masked_fill(~valid.unsqueeze(-1), float("-inf"))

    # ------------------------------------------------------------ answers

    def _answer_nodes(self, samples: list[dict[str, Any]], graph: Any) -> tuple[list[int], torch.Tensor]:
        """The samples whose target names a node of their graph, and those nodes (batched indices)."""
        rows, nodes = [], []
        for i, spans in enumerate(_name_spans(graph, [s.get(self.target_field) for s in samples])):
            whole = [node for node, start, end in spans if start == 0 and end == len(samples[i][self.target_field])]
            if whole:
                rows.append(i)
                nodes.append(whole[0])
        return rows, torch.tensor(nodes, dtype=torch.long, device=graph.x.device)

    def answer_logits(self, inputs: Any) -> torch.Tensor:
        """``[B, num_classes]``: the answer head on the state of the node each sample's target names (what
        ``answer-pretraining`` trains the reasoner through); every sample must carry its target."""
        samples, graph = split_inputs(self, inputs)
        if self.answer_head is None or graph is None:
            raise AutoGLMError(
                "span-extractor: no answer head to score",
                hint="the decoder needs a graph input, answer_weight > 0 and a labelled task",
            )
        rows, nodes = self._answer_nodes(samples, graph)
        if len(rows) != len(samples):
            missing = next(s for i, s in enumerate(samples) if i not in set(rows))
            raise DataError(f"span-extractor: no node of the graph is named {missing.get(self.target_field)!r}")
        return self.answer_head(graph.x[nodes])

    def auxiliary_loss(self) -> torch.Tensor | None:
        """The answer head's weighted cross-entropy from the last forward pass (``answer_weight``), or None."""
        return self._answer_loss

    def _score_answers(self, samples: list[dict[str, Any]], graph: Any) -> None:
        """The answer head's loss on the labelled samples whose target names a node (kept for auxiliary_loss)."""
        self._answer_loss = None
        if self.answer_head is None or graph is None:
            return
        rows, nodes = self._answer_nodes(samples, graph)
        keep = [j for j, i in enumerate(rows) if isinstance(samples[i].get("label"), int)]
        if keep:
            gold = torch.tensor([samples[rows[j]]["label"] for j in keep], device=nodes.device)
            logits = self.answer_head(graph.x[nodes[keep]]).float()
            self._answer_loss = self.config.answer_weight * torch.nn.functional.cross_entropy(logits, gold)

    # ------------------------------------------------------------ running

    def forward(self, inputs: Any) -> TextOutput:
        samples, graph = split_inputs(self, inputs)
        self._score_answers(samples, graph)
        batch = self._encode(samples, graph)
        logits = self._logits(graph, batch)
        losses, correct, scored = [], 0, 0
        for i, sample in enumerate(samples):
            target = sample.get(self.target_field)
            if not isinstance(target, str) or not target.strip():
                continue
            gold = _gold_tokens(sample["text"], target.strip(), batch["offsets"][i], batch["first"][i])
            if gold is None:
                raise DataError(
                    f"span-extractor: the answer {target.strip()!r} is not in its sample's text "
                    f"({sample['text'][:60]!r}...)",
                    hint="extractive-qa needs each target to be a span of the text; use task = 'generate' otherwise",
                )
            if not gold:  # the answer is there but past max_length: nothing to score
                continue
            starts = torch.tensor([s for s, _ in gold], device=logits.device)
            ends = torch.tensor([e for _, e in gold], device=logits.device)
            row = logits[i].float()  # log-sum-exp in full precision under autocast
            losses.append(
                row[:, 0].logsumexp(0)
                - row[starts, 0].logsumexp(0)
                + row[:, 1].logsumexp(0)
                - row[ends, 1].logsumexp(0)
            )
            best = (int(row[:, 0].argmax()), int(row[:, 1].argmax()))
            correct += best in set(gold)
            scored += 1
        loss = torch.stack(losses).mean() / 2 if losses else logits.nan_to_num(0.0, 0.0, 0.0).sum() * 0.0
        return TextOutput(loss, correct, scored, logits.nan_to_num(neginf=-1e4))

    @torch.no_grad()
    def generate(self, inputs: Any, **options: Any) -> list[str]:
        """The best span of each sample's text. Options: ``max_new_tokens`` (most tokens in the span; default
        ``max_answer_tokens``) and ``on_text`` (receives each answer, then a line break; one sample at a time)."""
        unknown = set(options) - {"max_new_tokens", "on_text"}
        if unknown:
            raise InputError(
                f"span-extractor: unknown option {sorted(unknown)[0]!r} (an extractor has no beams, sampling or "
                "stop strings)",
                hint="use max_new_tokens, the most tokens in an answer",
            )
        most = int(options.get("max_new_tokens", self.config.max_answer_tokens))
        on_text: Callable[[str], None] | None = options.get("on_text")
        samples, graph = split_inputs(self, inputs)
        if on_text is not None and len(samples) > 1:
            raise InputError("span-extractor: streaming works one sample at a time", hint="answer one sample")
        was_training = self.training
        self.eval()
        try:
            batch = self._encode(samples, graph)
            logits = self._logits(graph, batch)
        finally:
            self.train(was_training)
        answers = []
        for i, sample in enumerate(samples):
            start, end = logits[i, :, 0], logits[i, :, 1]
            pairs = start[:, None] + end[None, :]
            length = pairs.size(0)
            allowed = torch.ones(length, length, dtype=torch.bool, device=pairs.device).triu().tril(most - 1)
            s, e = divmod(int(pairs.masked_fill(~allowed, float("-inf")).argmax()), length)
            offsets, first = batch["offsets"][i], batch["first"][i]
            if not offsets:
                answers.append("")
                continue
            a, b = (
                offsets[min(max(s - first, 0), len(offsets) - 1)][0],
                offsets[min(max(e - first, 0), len(offsets) - 1)][1],
            )
            answers.append(sample["text"][a:b].strip())
        if on_text is not None:
            on_text(answers[0])
            on_text("\n")
        return answers


def _name_spans(graph: Any, texts: list[Any]) -> list[list[tuple[int, int, int]]]:
    """Per sample, (batched node index, start, end) of every whole-word occurrence in its text of a name that the
    graph builder gave one of its nodes (``node_text``)."""
    batched = getattr(graph, "ptr", None) is not None
    out: list[list[tuple[int, int, int]]] = []
    for i, text in enumerate(texts):
        names = (graph.get_example(i) if batched else graph).node_text if hasattr(graph, "node_text") else []
        offset = int(graph.ptr[i]) if batched else 0
        found = []
        for node, name in enumerate(names or []):
            if isinstance(name, str) and name and isinstance(text, str):
                found += [(offset + node, *m.span()) for m in re.finditer(rf"(?<!\w){re.escape(name)}(?!\w)", text)]
        out.append(found)
    return out


def _gold_tokens(text: str, answer: str, offsets: list[tuple[int, int]], first: int) -> list[tuple[int, int]] | None:
    """(start token, end token) of every whole-word occurrence of ``answer`` in ``text``, as sequence positions;
    None when the text never states it, [] when every occurrence was cut off."""
    spans = [(m.start(), m.end()) for m in re.finditer(rf"(?<!\w){re.escape(answer)}(?!\w)", text)]
    if not spans:
        return None
    gold = []
    for start, end in spans:
        first_token = next((j for j, (a, b) in enumerate(offsets) if a <= start < b or (a >= start and b > a)), None)
        last_token = next((j for j in range(len(offsets) - 1, -1, -1) if offsets[j][0] < end), None)
        if first_token is not None and last_token is not None and last_token >= first_token and offsets[-1][1] >= end:
            gold.append((first + first_token, first + last_token))
    return gold
