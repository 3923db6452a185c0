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

from autoglm_sdk.plugin import BuildContext, PluginConfig, PluginSpec, Port, require_modality


class BertEncoderConfig(PluginConfig):
    """A small BERT text encoder, trained from scratch with its own WordPiece
    tokenizer, or initialised from a pretrained checkpoint."""

    pretrained: str | None = Field(
        None,
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
