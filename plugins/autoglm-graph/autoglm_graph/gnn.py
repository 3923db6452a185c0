"""Multi-round message-passing reasoners on PyG convolutions: gcn, gat, sage, gin, rgcn.

Every reasoner maps ``x [N, F_in] -> x [N, hidden]`` over ``layers`` rounds:
``h <- act(norm(conv_l(dropout(h), edges) (+ h when residual)))``. With
``share_weights`` every round after the first reuses one convolution, so the
number of rounds can grow past the chains seen in training without adding
parameters. Query conditioning comes from the node features (a graph builder
marks the query's source and target there, as in NBFNet's boundary condition).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch_geometric.nn import GATv2Conv, GCNConv, GINConv, RGCNConv, SAGEConv

from autoglm_graph.specs import GATConfig, GCNConfig, GINConfig, MLPConfig, RGCNConfig, SAGEConfig
from autoglm_sdk.plugin import BuildContext, SemanticGraph, check_graph


def make_norm(kind: str, size: int) -> nn.Module:
    if kind == "layer":
        return nn.LayerNorm(size)
    if kind == "batch":
        return nn.BatchNorm1d(size)
    return nn.Identity()


class MessagePassingReasoner(nn.Module):
    """Rounds of one convolution type; subclasses say which (``make_conv``)."""

    kind = "reasoner"
    uses_edge_types = False
    uses_edge_weight = False  # convolutions that take a scalar weight per edge

    def __init__(self, config, ctx: BuildContext) -> None:
        super().__init__()
        self.config = config
        port = ctx.input
        self.in_dim = port.dim
        self.num_edge_types = port.num_edge_types or 1
        if self.in_dim is None:
            raise ValueError(f"{self.name} needs the input feature size (ctx.input.dim)")
        c = config
        first = self.make_conv(self.in_dim, c.hidden)
        if c.share_weights and c.layers > 1:
            shared = self.make_conv(c.hidden, c.hidden)
            convs = [first] + [shared] * (c.layers - 1)  # one module object: one set of weights
        else:
            convs = [first] + [self.make_conv(c.hidden, c.hidden) for _ in range(c.layers - 1)]
        self.convs = nn.ModuleList(convs)
        self.norms = nn.ModuleList(make_norm(c.norm, c.hidden) for _ in range(c.layers))
        self.dropout = nn.Dropout(c.dropout)

    def make_conv(self, in_dim: int, out_dim: int) -> nn.Module:
        raise NotImplementedError

    def reset_parameters(self) -> None:
        for conv in self.convs:
            conv.reset_parameters()

    def forward(self, graph: SemanticGraph) -> SemanticGraph:
        check_graph(
            graph, dim=self.in_dim, num_edge_types=self.num_edge_types if self.uses_edge_types else None, who=self.name
        )
        h = graph.x
        extra = (graph.edge_type,) if self.uses_edge_types else ()
        weight = getattr(graph, "edge_weight", None)
        if self.uses_edge_weight and weight is not None:  # a learned or weighted graph (e.g. `adaptive`)
            extra = (weight,)
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            out = conv(self.dropout(h) if i else h, graph.edge_index, *extra)
            if self.config.residual and i:
                out = out + h
            h = torch.relu(norm(out))
        result = copy.copy(graph)
        result.x = h
        return result


class GCNReasoner(MessagePassingReasoner):
    """Graph convolution (Kipf & Welling, 2017): ``D^-1/2 (A + I) D^-1/2 H W``."""

    name = "gcn"
    Config = GCNConfig
    uses_edge_weight = True

    def make_conv(self, in_dim: int, out_dim: int) -> nn.Module:
        return GCNConv(in_dim, out_dim, add_self_loops=self.config.self_loops)


class GATReasoner(MessagePassingReasoner):
    """Graph attention, GATv2 (Brody et al., 2022); heads are concatenated to ``hidden``."""

    name = "gat"
    Config = GATConfig

    def make_conv(self, in_dim: int, out_dim: int) -> nn.Module:
        return GATv2Conv(in_dim, out_dim // self.config.heads, heads=self.config.heads)


class SAGEReasoner(MessagePassingReasoner):
    """GraphSAGE (Hamilton et al., 2017): ``W1 h_v + W2 aggr(h_u)``."""

    name = "sage"
    Config = SAGEConfig

    def make_conv(self, in_dim: int, out_dim: int) -> nn.Module:
        return SAGEConv(in_dim, out_dim, aggr=self.config.aggr)


class GINReasoner(MessagePassingReasoner):
    """GIN (Xu et al., 2019): ``MLP((1 + eps) h_v + sum h_u)``."""

    name = "gin"
    Config = GINConfig

    def make_conv(self, in_dim: int, out_dim: int) -> nn.Module:
        mlp = nn.Sequential(nn.Linear(in_dim, out_dim), nn.ReLU(), nn.Linear(out_dim, out_dim))
        return GINConv(mlp, train_eps=self.config.train_eps)


class RGCNReasoner(MessagePassingReasoner):
    """Relational GCN (Schlichtkrull et al., 2018): one weight per edge type, optionally from shared bases."""

    name = "rgcn"
    Config = RGCNConfig
    uses_edge_types = True

    def make_conv(self, in_dim: int, out_dim: int) -> nn.Module:
        bases = self.config.num_bases or None
        return RGCNConv(in_dim, out_dim, num_relations=self.num_edge_types, num_bases=bases, aggr=self.config.aggr)


class NodeLinear(nn.Linear):
    """A linear layer in a convolution's place: it reads a node's own state and ignores the edges."""

    def forward(
        self, x: torch.Tensor, edge_index: torch.Tensor | None = None, *edge_data: torch.Tensor
    ) -> torch.Tensor:
        return super().forward(x)


class MLPReasoner(MessagePassingReasoner):
    """Rounds without message passing: the graph-free baseline (and a candidate operation for search)."""

    name = "mlp"
    Config = MLPConfig

    def make_conv(self, in_dim: int, out_dim: int) -> nn.Module:
        return NodeLinear(in_dim, out_dim)
