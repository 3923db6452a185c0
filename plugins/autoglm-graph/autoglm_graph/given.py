"""``given``: the graph each sample carries, as a SemanticGraph batch."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from autoglm_graph.specs import GivenConfig
from autoglm_sdk.plugin import BuildContext, InputError, SemanticGraph


class GivenGraph(nn.Module):
    """Samples with a ``graph`` entry -> one batched SemanticGraph (node attributes such as ``y`` kept)."""

    name = "given"
    kind = "graph_builder"
    Config = GivenConfig

    def __init__(self, config: GivenConfig, ctx: BuildContext | None = None) -> None:
        super().__init__()
        self.config = config
        port = ctx.input if ctx and ctx.inputs else None
        self.dim = port.dim if port else None
        self.num_edge_types = (port.num_edge_types or 1) if port else None
        # follows .to(device) so the batch lands where the downstream stages are
        self.register_buffer("_anchor", torch.empty(0), persistent=False)

    def forward(self, samples: list[dict[str, Any]]) -> SemanticGraph:
        graphs = []
        for i, sample in enumerate(samples):
            data = sample.get("graph") if isinstance(sample, dict) else None
            if data is None:
                raise InputError(f"given: sample {i} has no `graph` entry")
            graph = SemanticGraph.from_data(data, num_edge_types=self.num_edge_types or 1 << 30)
            graph.validate(dim=self.dim)
            if self.config.add_reverse_edges and graph.edge_index.numel():
                graph.edge_index = torch.cat([graph.edge_index, graph.edge_index.flip(0)], dim=1)
                graph.edge_type = torch.cat([graph.edge_type, graph.edge_type])
            graphs.append(graph)
        return SemanticGraph.collate(graphs).to(self._anchor.device)
