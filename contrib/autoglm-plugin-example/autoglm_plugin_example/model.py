"""APPNP: ``H0 = MLP(X)``, then ``K`` steps of ``H <- (1 - alpha) Â H + alpha H0``.

``Â`` is the symmetrically normalised adjacency with self-loops. Separating
prediction from propagation lets information travel ``K`` hops with the
parameters of a shallow MLP. Shapes: ``x [N, F_in] -> x [N, hidden]``.
"""

from __future__ import annotations

import copy

from torch import nn
from torch_geometric.nn import APPNP

from autoglm_plugin_example import APPNPConfig
from autoglm_sdk.plugin import BuildContext, InputError, SemanticGraph


class APPNPReasoner(nn.Module):
    name = "appnp"
    kind = "reasoner"
    Config = APPNPConfig

    def __init__(self, config: APPNPConfig, ctx: BuildContext) -> None:
        super().__init__()
        self.config = config
        self.in_dim = ctx.input.dim
        layers: list[nn.Module] = []
        size = self.in_dim
        for i in range(config.mlp_layers):
            layers += [nn.Dropout(config.dropout), nn.Linear(size, config.hidden)]
            if i < config.mlp_layers - 1:
                layers.append(nn.ReLU())
            size = config.hidden
        self.mlp = nn.Sequential(*layers)
        self.propagate = APPNP(K=config.steps, alpha=config.alpha)

    def forward(self, graph: SemanticGraph) -> SemanticGraph:
        x = getattr(graph, "x", None)
        if x is None or x.dim() != 2 or x.size(1) != self.in_dim:
            got = "nothing" if x is None else f"shape {tuple(x.shape)}"
            raise InputError(f"appnp: expected node features [num_nodes, {self.in_dim}], got {got}")
        result = copy.copy(graph)
        result.x = self.propagate(self.mlp(x), graph.edge_index)
        return result
