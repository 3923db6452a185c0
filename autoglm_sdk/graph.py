"""The graph that flows between stages: a PyG ``Data`` with typed edges and node texts."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

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


def hops_between(edges: Iterable[tuple[int, int]], a: int, b: int) -> int | None:
    """The fewest edges on a path between nodes ``a`` and ``b``, edges read both ways; None when none links them."""
    neighbours: dict[int, set[int]] = {}
    for u, v in edges:
        neighbours.setdefault(u, set()).add(v)
        neighbours.setdefault(v, set()).add(u)
    distance, frontier, seen = 0, {a}, {a}
    while frontier and b not in seen:
        frontier = {n for i in frontier for n in neighbours.get(i, ()) if n not in seen}
        seen |= frontier
        distance += 1
    return distance if b in seen else None


def query_abstentions(graph: Any, reach: int | None = None) -> list[str | None]:
    """Per graph of ``graph`` (a batch or one graph): why its query cannot be answered from it, or None.

    Only graphs that mark a query pair (``is_source`` / ``is_target``) are judged. A pipeline should say "no
    relation found" rather than guess when its builder found ``problems`` (a list of reasons on the graph), when
    the question names one person twice, when a person of the question takes part in no relation the builder
    read, when no chain of relations links the two, or when the chain is longer than the reasoner's ``reach``
    (the rounds it follows).
    """
    source, target = getattr(graph, "is_source", None), getattr(graph, "is_target", None)
    batched = isinstance(graph, Batch)
    count = int(graph.num_graphs) if batched else 1
    if source is None or target is None:
        return [None] * count
    batch = graph.batch.cpu().tolist() if batched else [0] * graph.num_nodes
    names = getattr(graph, "node_text", None)
    names = [n for part in names for n in part] if batched and names is not None else names
    problems = getattr(graph, "problems", None)
    problems = (problems if batched else [problems]) if problems is not None else [[]] * count
    edges = [tuple(e) for e in graph.edge_index.cpu().t().tolist()]
    touched = {i for e in edges for i in e}
    sources: list[list[int]] = [[] for _ in range(count)]
    targets: list[list[int]] = [[] for _ in range(count)]
    # one pass over the nodes (evaluation runs this on every validation batch of every epoch)
    for i, (g, is_source, is_target) in enumerate(zip(batch, source.bool().tolist(), target.bool().tolist())):
        if is_source:
            sources[g].append(i)
        if is_target:
            targets[g].append(i)
    out: list[str | None] = []
    for g in range(count):
        if problems[g]:
            out.append("; ".join(problems[g]))
        elif len(sources[g]) != 1 or len(targets[g]) != 1:
            out.append(None)  # not a single query pair: nothing to judge
        else:
            out.append(_why_unanswerable(sources[g][0], targets[g][0], edges, touched, names, reach))
    return out


def _why_unanswerable(
    s: int, t: int, edges: list[tuple[int, int]], touched: set[int], names: Any, reach: int | None
) -> str | None:
    def name(i: int) -> str:
        return str(names[i]) if names is not None and i < len(names) else f"node {i}"

    if s == t:
        return f"the question asks how {name(s)} is related to {name(s)} themself"
    for i in (t, s):
        if i not in touched:
            return f"{name(i)} takes part in no relation read from the input"
    distance = hops_between(edges, s, t)
    if distance is None:
        return f"no chain of relations read from the input links {name(t)} and {name(s)}"
    if reach is not None and distance > reach:
        return f"{name(t)} and {name(s)} are {distance} relations apart; the reasoner follows at most {reach}"
    return None
