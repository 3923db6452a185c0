"""Specs and configs of the autoglm-graph plugins.

This module is what the entry points name: specs and configs only, no torch.
Implementations live in the sibling modules and load when a pipeline uses them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from autoglm_sdk.protocols import (
    BuildContext,
    PluginConfig,
    PluginSpec,
    Port,
    PortMismatch,
    TaskSpec,
    reasoner_signature,
    require_input,
)


# ---------------------------------------------------------------------- sbm


class SBMConfig(PluginConfig):
    """Stochastic block model: ``blocks`` communities; memory grows with the
    number of node pairs (dense sampling), so keep blocks * nodes_per_block
    below about 20,000 nodes."""

    blocks: int = Field(4, ge=2, le=64, description="Number of communities (= classes).")
    nodes_per_block: int = Field(150, ge=4, le=5000, description="Nodes in each community.")
    p_in: float = Field(0.05, ge=0, le=1, description="Edge probability inside a community.")
    p_out: float = Field(0.005, ge=0, le=1, description="Edge probability between communities.")
    feature_dim: int = Field(16, ge=1, le=4096, description="Node feature size.")
    feature_signal: float = Field(
        0.5, ge=0, description="Distance of each community's feature mean from the origin, in noise standard deviations."
    )
    train_per_class: int = Field(20, ge=1, description="Labelled training nodes per community.")
    val_per_class: int = Field(30, ge=1, description="Validation nodes per community; the rest are test nodes.")

    @model_validator(mode="after")
    def _splits_fit(self) -> "SBMConfig":
        used = self.train_per_class + self.val_per_class
        if used >= self.nodes_per_block:
            raise ValueError(
                f"train_per_class + val_per_class ({used}) must be < nodes_per_block ({self.nodes_per_block}) "
                "so that every community keeps test nodes"
            )
        return self


sbm = PluginSpec(
    name="sbm",
    kind="data",
    config=SBMConfig,
    factory="autoglm_graph.sbm:SBMDataSource",
    summary="Seeded stochastic-block-model node classification (communities as labels).",
    signature=lambda cfg, ctx: Port("samples", frozenset({"graph"}), dim=cfg.feature_dim),
)

# -------------------------------------------------------------------- given


class GivenConfig(PluginConfig):
    """The graph the data carries, used as it is."""

    add_reverse_edges: bool = Field(False, description="Add the reverse of every edge (same type), making it undirected.")


def _given_signature(cfg: GivenConfig, ctx: BuildContext) -> Port:
    port = ctx.input
    if port.type != "samples" or "graph" not in port.modalities:
        got = ",".join(sorted(port.modalities)) or port.type
        raise PortMismatch(f"needs samples that carry a graph (modality `graph`), got {got}")
    return Port("semantic_graph", dim=port.dim, num_edge_types=port.num_edge_types or 1)


given = PluginSpec(
    name="given",
    kind="graph_builder",
    config=GivenConfig,
    factory="autoglm_graph.given:GivenGraph",
    summary="Uses the graph that each sample already carries.",
    signature=_given_signature,
)

# ---------------------------------------------------------------------- gcn


class GCNConfig(PluginConfig):
    hidden: int = Field(64, ge=1, le=8192, description="Size of the node states.")
    layers: int = Field(2, ge=1, le=64, description="Rounds of message passing.")
    dropout: float = Field(0.5, ge=0, lt=1, description="Dropout on node states between rounds.")
    residual: bool = Field(False, description="Add each round's input to its output (after the first round).")
    norm: Literal["none", "layer", "batch"] = Field("none", description="Normalisation after each round.")
    share_weights: bool = Field(False, description="Use one convolution for every round after the first.")
    self_loops: bool = Field(True, description="Add self-loops before normalising (as in Kipf & Welling).")


gcn = PluginSpec(
    name="gcn",
    kind="reasoner",
    config=GCNConfig,
    factory="autoglm_graph.gcn:GCNReasoner",
    summary="Graph convolutional network (Kipf & Welling) from PyG, edge types ignored.",
    signature=reasoner_signature,
    capabilities=frozenset({"learnable"}),
)

# --------------------------------------------------------------- classifier


class ClassifierConfig(PluginConfig):
    hidden: int = Field(0, ge=0, description="Hidden layer size of the head (0 = a single linear layer).")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout before the head.")
    readout: Literal["auto", "node", "pool", "pair"] = Field(
        "auto",
        description="What the head reads: node = every node (node-level tasks), pool = the pooled graph, pair = the "
        "query source and target states. auto picks node for node-level tasks, pair when the graph marks a query "
        "pair, else pool. An encoder's embeddings are always read pooled.",
    )
    pooling: Literal["mean", "sum", "max"] = Field("mean", description="How node states become a graph vector (pool readout).")
    pair_with_graph: bool = Field(False, description="Pair readout: also append the mean-pooled graph.")


def classifier_readout(config: ClassifierConfig, port: Port, task: TaskSpec | None) -> str:
    """The readout the classifier will use for ``port``, or PortMismatch saying why none fits."""
    if port.type == "embeddings":
        return "embeddings"
    port = require_input(BuildContext(inputs={"in": port}), "semantic_graph")
    readout = config.readout
    if readout == "auto":
        if task is not None and task.level == "node":
            return "node"
        return "pair" if "query_pair" in port.attributes else "pool"
    if readout == "pair" and "query_pair" not in port.attributes:
        raise PortMismatch("readout 'pair' needs a graph whose builder marks the query pair (attribute query_pair)")
    if task is not None and (readout == "node") != (task.level == "node"):
        raise PortMismatch(f"readout '{readout}' does not suit a {task.level}-level task")
    return readout


def _classifier_signature(cfg: ClassifierConfig, ctx: BuildContext) -> Port:
    port = ctx.input
    if port.type not in ("semantic_graph", "embeddings"):
        raise PortMismatch(f"needs a semantic graph or embeddings, got {port.type.replace('_', ' ')}")
    classifier_readout(cfg, port, ctx.task)
    return Port("logits", dim=ctx.task.num_classes if ctx.task else None)


classifier = PluginSpec(
    name="classifier",
    kind="decoder",
    config=ClassifierConfig,
    factory="autoglm_graph.classifier:Classifier",
    summary="Classification head over node states (per node, pooled or the query pair) or encoder embeddings.",
    signature=_classifier_signature,
    capabilities=frozenset({"learnable"}),
)
