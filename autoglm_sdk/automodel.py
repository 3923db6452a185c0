"""The model-level API: :class:`AutoGLMConfig` says what model to make; ``AutoGLMModel`` (the loaded
:class:`~autoglm_sdk.artifact.Pipeline`) is what ``from_config`` trains and ``from_pretrained`` loads.

A config is a short way to write a manifest: the language model's size, whether a graph conditions it, which
reasoner and decoder, which data and task. ``to_manifest()`` gives the manifest a build runs, so everything a
manifest can say stays reachable (``extra`` merges raw sections in). This module imports no torch.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from autoglm_sdk.errors import ManifestError


@dataclass
class AutoGLMConfig:
    """What model to build. The defaults make a small graph-conditioned generator for kinship explanations."""

    #: language model size (random init; ``pretrained`` names a local checkpoint instead)
    vocab_size: int = 2000
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    pretrained: str | None = None
    lora_rank: int = 0
    #: graph on: text -> graph builder -> reasoner -> decoder (soft-prompt tokens and the graph's facts as text);
    #: off: the decoder reads the text alone
    graph: bool = True
    graph_tokens: int = 4
    graph_builder: str = "text-relations"
    reasoner: str = "path-composer"
    reasoner_options: dict[str, Any] = field(default_factory=lambda: {"states": 16})
    #: ``causal-lm`` writes text (task generate or summarise); ``classifier`` classifies
    decoder: str = "causal-lm"
    task: str = "generate"
    target_field: str = "explanation"
    data: dict[str, Any] = field(default_factory=lambda: {"plugin": "kinship"})
    train: dict[str, Any] = field(default_factory=lambda: {"epochs": 12, "lr": 0.05, "batch_size": 32})
    seed: int = 0
    name: str = "autoglm-model"
    #: raw manifest sections merged over the generated ones (e.g. {"decoder": {"max_new_tokens": 96}})
    extra: dict[str, Any] = field(default_factory=dict)

    def to_manifest(self) -> dict[str, Any]:
        """The manifest this config stands for (a raw dict; validate it with ``validate_manifest``)."""
        text = self.decoder == "causal-lm"
        raw: dict[str, Any] = {
            "pipeline": {"name": self.name, "seed": self.seed, "task": self.task if text else "classify"},
            "data": copy.deepcopy(self.data),
            "train": copy.deepcopy(self.train),
        }
        if text:
            raw["pipeline"]["target_field"] = self.target_field
        if self.graph:
            raw["graph_builder"] = {"plugin": self.graph_builder}
            raw["reasoner"] = {"plugin": self.reasoner, **self.reasoner_options}
        if text:
            decoder: dict[str, Any] = {
                "plugin": "causal-lm",
                "inputs": ["reasoner", "data"] if self.graph else ["data"],
                "prompt": "{graph} {question}" if self.graph else "{text}",
                "graph_tokens": self.graph_tokens if self.graph else 0,
                "lora_rank": self.lora_rank,
                # a transformer wants a far smaller step than a GNN's [train] lr
                "lr_scale": 0.04,
            }
            if self.pretrained:
                decoder["pretrained"] = self.pretrained
            else:
                decoder.update(
                    vocab_size=self.vocab_size,
                    hidden_size=self.hidden_size,
                    num_layers=self.num_layers,
                    num_heads=self.num_heads,
                    intermediate_size=2 * self.hidden_size,
                )
            raw["decoder"] = decoder
        else:
            raw["decoder"] = {"plugin": self.decoder}
        return _merge(raw, self.extra)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AutoGLMConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ManifestError(f"AutoGLMConfig: unknown key `{unknown[0]}`", hint=f"known keys: {', '.join(known)}")
        return cls(**data)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
