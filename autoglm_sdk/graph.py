"""The graph that flows between stages: a PyG ``Data`` with typed edges and node texts."""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch_geometric.data import Batch, Data

from autoglm_sdk.errors import InputError


class SemanticGraph(Data):
    """Entities as nodes, relations as typed directed edges.

    Attributes (``N`` nodes, ``E`` edges, ``B`` graphs in a batch):

    * ``x``: ``[N, F]`` float node features (a reasoner replaces them with states);
    * ``edge_index``: ``[2, E]`` long, source row then target row;
    * ``edge_type``: ``[E]`` long relation ids in ``[0, num_edge_types)``;
    * ``edge_attr``: optional ``[E, D]`` float;
    * ``edge_type_probs``: optional ``[E, num_edge_types]`` float, a builder's type distribution per edge while
      it learns types from the task's loss (a reasoner that reads it lets the gradient reach the builder);
    * ``node_text``: optional list of ``N`` strings (for explanations);
    * ``batch``: ``[N]`` long graph id, present after :meth:`collate`;
    * any extra per-node tensor (``y``, ``label_mask``) travels along.
    """

    @classmethod
    def from_data(cls, data: Data, num_edge_types: int = 1) -> "SemanticGraph":
        """Wrap a plain PyG ``Data``; missing ``edge_type`` means every edge has type 0."""
        graph = cls(**{k: v for k, v in data.to_dict().items()})
        if graph.edge_index is None:
            graph.edge_index = torch.empty(2, 0, dtype=torch.long)
        if getattr(graph, "edge_type", None) is None:
            graph.edge_type = torch.zeros(graph.edge_index.size(1), dtype=torch.long)
        graph.validate(num_edge_types=num_edge_types)
        return graph

    @staticmethod
    def collate(graphs: Sequence["SemanticGraph"]) -> "SemanticGraph":
        """Batch graphs into one disjoint graph with a ``batch`` vector."""
        if not graphs:
            raise InputError("cannot batch an empty list of graphs")
        return Batch.from_data_list(list(graphs))  # type: ignore[return-value]

    def validate(self, *, dim: int | None = None, num_edge_types: int | None = None) -> "SemanticGraph":
        """Raise :class:`InputError` naming the first malformed field."""
        check_graph(self, dim=dim, num_edge_types=num_edge_types)
        return self


def check_graph(graph: Any, *, dim: int | None = None, num_edge_types: int | None = None, who: str = "graph") -> None:
    """Shared input validation for stages that consume a SemanticGraph."""
    x = getattr(graph, "x", None)
    if not isinstance(x, torch.Tensor) or x.dim() != 2:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InputError(f"{who}: node features `x` must be a 2-D tensor [num_nodes, dim], got {shape}")
    if not x.is_floating_point():
        raise InputError(f"{who}: node features `x` must be floating point, got {x.dtype}")
    if dim is not None and x.size(1) != dim:
        raise InputError(f"{who}: expected node features of size {dim}, got {x.size(1)}")
    ei = getattr(graph, "edge_index", None)
    if not isinstance(ei, torch.Tensor) or ei.dim() != 2 or ei.size(0) != 2:
        shape = tuple(ei.shape) if isinstance(ei, torch.Tensor) else type(ei).__name__
        raise InputError(f"{who}: `edge_index` must be a [2, num_edges] tensor, got {shape}")
    if ei.dtype != torch.long:
        raise InputError(f"{who}: `edge_index` must be int64, got {ei.dtype}")
    if ei.numel() and (int(ei.min()) < 0 or int(ei.max()) >= x.size(0)):
        raise InputError(f"{who}: `edge_index` refers to node {int(ei.max())} but the graph has {x.size(0)} nodes")
    et = getattr(graph, "edge_type", None)
    if et is not None:
        if et.dim() != 1 or et.numel() != ei.size(1):
            raise InputError(f"{who}: `edge_type` must have one entry per edge ({ei.size(1)}), got {tuple(et.shape)}")
        if num_edge_types is not None and et.numel() and int(et.max()) >= num_edge_types:
            raise InputError(f"{who}: edge type {int(et.max())} is out of range for {num_edge_types} edge types")
