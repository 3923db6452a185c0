"""``knn``: each node linked to its k most similar nodes in feature space, per sample graph."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from autoglm_graph.given import GivenGraph
from autoglm_graph.specs import GivenConfig, KnnConfig
from autoglm_graph.structure import graph_stats, knn_edges, symmetrize, with_edges
from autoglm_sdk.plugin import BuildContext, SemanticGraph


class KnnGraph(nn.Module):
    """The sample's graph with its edges replaced by (or joined with) a kNN graph over its node features."""

    name = "knn"
    kind = "graph_builder"
    Config = KnnConfig

    def __init__(self, config: KnnConfig, ctx: BuildContext | None = None) -> None:
        super().__init__()
        self.config = config
        self.given = GivenGraph(GivenConfig(), ctx)  # reads and checks the samples' graphs
        self.stats: dict[str, Any] = {}

    def forward(self, samples: list[dict[str, Any]]) -> SemanticGraph:
        graphs = []
        for sample in samples:
            graph = self.given([sample])
            graphs.append(with_edges(graph, self.edges(graph)))
        batch = SemanticGraph.collate(graphs)
        if not self.training:  # what the report shows: the graph the evaluation saw
            self.stats = graph_stats(batch.edge_index, batch.num_nodes, getattr(batch, "y", None))
        return batch

    def edges(self, graph: SemanticGraph) -> torch.Tensor:
        c = self.config
        with torch.no_grad():  # a fixed graph: no gradient through the neighbour choice
            edge_index, _ = knn_edges(graph.x, c.k, c.metric, c.chunk)
        n = graph.num_nodes
        if c.symmetric:
            edge_index, _ = symmetrize(edge_index, None, n)
        if c.combine == "union" and graph.edge_index.numel():
            from torch_geometric.utils import coalesce

            edge_index = coalesce(torch.cat([graph.edge_index, edge_index], dim=1), num_nodes=n)
        return edge_index

    def report(self) -> dict[str, Any]:
        c = self.config
        return {
            "k": c.k,
            "metric": c.metric,
            "combine": c.combine,
            **{f"graph_{k}": round(v, 4) if isinstance(v, float) else v for k, v in self.stats.items()},
        }
