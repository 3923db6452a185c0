"""``gcn``: multi-round graph convolution (Kipf & Welling, 2017) from PyG.

Round ``l``: ``H' = act(D^-1/2 (A + I) D^-1/2 H W_l)`` with optional residual
``H' + H`` and normalisation. Shapes: ``x [N, F_in] -> x [N, hidden]``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch_geometric.nn import GCNConv

from autoglm_graph.specs import GCNConfig
from autoglm_sdk.graph import SemanticGraph, check_graph
from autoglm_sdk.protocols import BuildContext


def make_norm(kind: str, size: int) -> nn.Module:
    if kind == "layer":
        return nn.LayerNorm(size)
    if kind == "batch":
        return nn.BatchNorm1d(size)
    return nn.Identity()


class GCNReasoner(nn.Module):
    name = "gcn"
    kind = "reasoner"
    Config = GCNConfig

    def __init__(self, config: GCNConfig, ctx: BuildContext) -> None:
        super().__init__()
        self.config = config
        self.in_dim = ctx.input.dim
        if self.in_dim is None:
            raise ValueError("gcn needs the input feature size (ctx.input.dim)")
        c = config
        first = GCNConv(self.in_dim, c.hidden, add_self_loops=c.self_loops)
        if c.share_weights and c.layers > 1:
            shared = GCNConv(c.hidden, c.hidden, add_self_loops=c.self_loops)
            convs = [first] + [shared] * (c.layers - 1)  # the same module object: one set of weights
        else:
            convs = [first] + [GCNConv(c.hidden, c.hidden, add_self_loops=c.self_loops) for _ in range(c.layers - 1)]
        self.convs = nn.ModuleList(convs)
        self.norms = nn.ModuleList(make_norm(c.norm, c.hidden) for _ in range(c.layers))
        self.dropout = nn.Dropout(c.dropout)

    def reset_parameters(self) -> None:
        for conv in self.convs:
            conv.reset_parameters()

    def forward(self, graph: SemanticGraph) -> SemanticGraph:
        check_graph(graph, dim=self.in_dim, who="gcn")
        h = graph.x
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            out = conv(self.dropout(h) if i else h, graph.edge_index)
            if self.config.residual and i:
                out = out + h
            h = torch.relu(norm(out))
        result = copy.copy(graph)
        result.x = h
        return result
