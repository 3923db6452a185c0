"""An example third-party plugin: the APPNP reasoner (Gasteiger et al., 2019).

This module is what the entry point loads, so it holds only the spec and the
config: importing it must not import torch (the contract kit checks).
"""

from __future__ import annotations

from pydantic import Field

from autoglm_sdk.plugin import PluginConfig, PluginSpec, reasoner_signature


class APPNPConfig(PluginConfig):
    hidden: int = Field(64, ge=1, description="Size of the node states the MLP produces.")
    mlp_layers: int = Field(2, ge=1, le=8, description="Layers of the MLP applied before propagation.")
    steps: int = Field(10, ge=1, le=100, description="Power-iteration steps K of personalised PageRank.")
    alpha: float = Field(0.1, gt=0, le=1, description="Teleport probability back to each node's own prediction.")
    dropout: float = Field(0.5, ge=0, lt=1, description="Dropout inside the MLP.")


appnp = PluginSpec(
    name="appnp",
    kind="reasoner",
    config=APPNPConfig,
    factory="autoglm_plugin_example.model:APPNPReasoner",
    summary="APPNP: predict with an MLP, then propagate by personalised PageRank (contrib example).",
    # semantic graph in, `hidden`-sized node states out; write your own for other shapes
    signature=reasoner_signature,
    capabilities=frozenset({"learnable"}),
)
