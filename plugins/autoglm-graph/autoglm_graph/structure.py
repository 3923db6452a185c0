"""Graph structure from node features, and the figures that describe a graph.

Shared by the ``knn`` and ``adaptive`` graph builders and the structure
benchmarks: dense similarity in row chunks (``cdist``/``matmul`` + ``topk``),
so no compiled extension is needed and memory stays ``chunk x N`` floats.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


def similarity(a: Tensor, b: Tensor, metric: str) -> Tensor:
    """``[n, m]`` similarity (larger is closer): cosine, or minus the Euclidean distance."""
    if metric == "cosine":
        return F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T
    return -torch.cdist(a, b)


def knn_edges(x: Tensor, k: int, metric: str = "cosine", chunk: int = 2048) -> tuple[Tensor, Tensor]:
    """Each node's ``k`` nearest other nodes as edges ``neighbour -> node`` (``[2, N*k]``) and their similarity.

    Rows are processed ``chunk`` at a time: a 100,000-node graph needs ``chunk * N`` floats (800 MB at the
    default), never ``N * N``."""
    n = x.size(0)
    k = min(k, n - 1)
    if k <= 0:
        return torch.empty(2, 0, dtype=torch.long, device=x.device), x.new_empty(0)
    sources, scores = [], []
    for start in range(0, n, chunk):
        rows = torch.arange(start, min(start + chunk, n), device=x.device)
        sim = similarity(x[rows], x, metric)
        sim[torch.arange(rows.numel(), device=x.device), rows] = float("-inf")  # no self loops
        value, index = sim.topk(k, dim=1)
        sources.append(index.reshape(-1))
        scores.append(value.reshape(-1))
    targets = torch.arange(n, device=x.device).repeat_interleave(k)
    return torch.stack([torch.cat(sources), targets]), torch.cat(scores)


def symmetrize(edge_index: Tensor, weight: Tensor | None, num_nodes: int) -> tuple[Tensor, Tensor | None]:
    """The union of the edges and their reverses, duplicates merged (weights: the larger)."""
    from torch_geometric.utils import coalesce

    both = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    if weight is None:
        return coalesce(both, num_nodes=num_nodes), None
    return coalesce(both, torch.cat([weight, weight]), num_nodes=num_nodes, reduce="max")


def with_edges(graph: Any, edge_index: Tensor, edge_weight: Tensor | None = None) -> Any:
    """``graph`` with its edges replaced by one untyped set (a built graph has no relation types or
    attributes of its own), weighted when ``edge_weight`` is given."""
    graph.edge_index = edge_index
    graph.edge_type = torch.zeros(edge_index.size(1), dtype=torch.long, device=edge_index.device)
    graph.edge_attr = None
    if edge_weight is not None:
        graph.edge_weight = edge_weight
    return graph


def graph_stats(
    edge_index: Tensor, num_nodes: int, y: Tensor | None = None, weight: Tensor | None = None
) -> dict[str, Any]:
    """Density, degree distribution, isolated nodes and (with labels) edge homophily of a directed edge list.

    Density is edges / (N * (N - 1)); degrees count incoming edges (a node's neighbourhood in message
    passing); homophily is the share of edges, weighted when weights are given, joining same-label nodes."""
    edges = edge_index.size(1)
    degree = torch.bincount(edge_index[1], minlength=num_nodes).float() if edges else torch.zeros(num_nodes)
    stats: dict[str, Any] = {
        "nodes": num_nodes,
        "edges": edges,
        "density": edges / max(num_nodes * (num_nodes - 1), 1),
        "mean_degree": float(degree.mean()) if num_nodes else 0.0,
        "degree_min": int(degree.min()) if num_nodes else 0,
        "degree_median": float(degree.median()) if num_nodes else 0.0,
        "degree_max": int(degree.max()) if num_nodes else 0,
        "isolated_nodes": int((degree == 0).sum()),
    }
    if y is not None and edges:
        same = (y[edge_index[0]] == y[edge_index[1]]).float()
        w = weight.detach().float().clamp_min(0) if weight is not None else torch.ones_like(same)
        stats["homophily"] = float((same * w).sum() / w.sum().clamp_min(1e-12))
    return stats


def degree_histogram(edge_index: Tensor, num_nodes: int, bins: int = 10) -> dict[str, list[float]]:
    """Counts of nodes per in-degree bin (``edges`` are the bin edges), for reports."""
    degree = torch.bincount(edge_index[1], minlength=num_nodes).float()
    top = float(degree.max()) if num_nodes else 0.0
    counts = torch.histc(degree, bins=bins, min=0, max=max(top, 1.0))
    edges = torch.linspace(0, max(top, 1.0), bins + 1)
    return {"edges": [round(float(e), 2) for e in edges], "counts": [int(c) for c in counts]}
