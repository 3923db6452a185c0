"""Reasoners that make the mistakes plugin authors made, used through import paths by test_stumbles.py."""

from __future__ import annotations

from pydantic import Field

from autoglm_sdk.plugin import PluginConfig, PluginSpec, reasoner_signature


class WidthConfig(PluginConfig):
    hidden: int = Field(16, ge=1, description="Declared output width.")


class ForwardOnly:
    """Defines forward but is not an nn.Module: the SDK calls the object."""

    name, kind, Config = "forward-only", "reasoner", WidthConfig

    def __init__(self, config, ctx):
        self.config = config

    def forward(self, graph):
        return graph


class WrongWidth:
    """Declares ``hidden`` but returns node states of half that width."""

    name, kind, Config = "wrong-width", "reasoner", WidthConfig

    def __init__(self, config, ctx):
        import torch

        self.lin = torch.nn.Linear(ctx.input.dim, config.hidden // 2)

    def __call__(self, graph):
        graph = graph.clone()
        graph.x = self.lin(graph.x)
        return graph


class Anonymous:
    """Writes its identity nowhere but in the spec: no name, kind or Config on the class."""

    def __init__(self, config, ctx):
        self.config = config

    def __call__(self, graph):
        return graph


def spec(name: str, factory: str) -> PluginSpec:
    return PluginSpec(name=name, kind="reasoner", config=WidthConfig, factory=factory, signature=reasoner_signature)


forward_only = spec("forward-only", f"{__name__}:ForwardOnly")
wrong_width = spec("wrong-width", f"{__name__}:WrongWidth")
missing_module = spec("missing-module", "no_such_module_anywhere:Reasoner")
anonymous = spec("anonymous", f"{__name__}:Anonymous")
