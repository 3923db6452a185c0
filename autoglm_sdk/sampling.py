"""Neighbour-sampled mini-batches for node tasks on graphs too large to train on whole (``[train] neighbors``).

A node classifier with k message-passing layers needs only each labelled node's k-hop neighbourhood. A step
therefore trains on a chunk of labelled "seed" nodes and a subgraph grown from them hop by hop, keeping at most
``fanout`` incoming edges per node and hop (GraphSAGE's sampling): its size is bounded by the seeds and fanouts,
not by the graph. Pure torch, because PyG's ``NeighborLoader`` needs pyg-lib or torch-sparse, which the SDK does
not depend on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from autoglm_sdk.errors import DataError


def generator_for(*parts: int) -> torch.Generator:
    """A generator seeded from several integers, the same in every run (unlike ``hash()`` of a string)."""
    value = 0
    for part in parts:
        value = (value * 1_000_003 + part + 1) % (2**61 - 1)
    return torch.Generator().manual_seed(value)


class NeighborSampler:
    """Samples the incoming neighbourhoods of seed nodes in ``graph`` (a ``torch_geometric.data.Data``).

    Messages flow from ``edge_index[0]`` to ``edge_index[1]`` as in PyG, so a node's inputs are the sources of
    its incoming edges: the edges are grouped by target once (CSR: ``colptr`` and the edge ids in that order),
    and each sample reads only the slices of the nodes it reaches. ``fanouts[h]`` is how many incoming edges
    each node reached at hop h keeps (-1: all). Not thread-safe: one ``position`` buffer is reused by every
    sample.
    """

    def __init__(self, graph: Any, fanouts: list[int]) -> None:
        self.graph, self.fanouts = graph, list(fanouts)
        self.num_nodes, self.num_edges = int(graph.num_nodes), graph.edge_index.size(1)
        targets = graph.edge_index[1]
        self.edge_ids = torch.argsort(targets, stable=True)  # edge ids grouped by target, in CSR order
        self.sources = graph.edge_index[0][self.edge_ids]
        self.colptr = torch.zeros(self.num_nodes + 1, dtype=torch.long, device=targets.device)
        self.colptr[1:] = torch.bincount(targets, minlength=self.num_nodes).cumsum(0)
        # global -> local id of the sample being built; -1 elsewhere, and reset after each sample
        self.position = torch.full((self.num_nodes,), -1, dtype=torch.long, device=targets.device)

    def incoming(self, frontier: Tensor, fanout: int, generator: torch.Generator) -> Tensor:
        """CSR slots of the incoming edges ``frontier`` keeps: all of a node's where its in-degree is at most
        ``fanout`` (or fanout is -1), else ``fanout`` distinct ones drawn uniformly. The draw is Floyd's algorithm,
        one round per pick vectorised over the nodes: O(fanout) whatever the degree, and exactly ``fanout`` edges
        (drawing with replacement and dropping repeats would keep about 7 of a node's 11 at fanout 10)."""
        start = self.colptr[frontier]
        degree = self.colptr[frontier + 1] - start
        many = degree > fanout if fanout >= 0 else torch.zeros_like(degree, dtype=torch.bool)
        take = torch.where(many, 0, degree)  # nodes that keep every incoming edge: their slots in order
        total = int(take.sum())
        rank = torch.arange(total, device=start.device) - torch.repeat_interleave(
            take.cumsum(0) - take, take, output_size=total
        )
        every = torch.repeat_interleave(start, take, output_size=total) + rank
        sampled, first = degree[many], start[many]
        picks = sampled.new_empty(sampled.numel(), max(fanout, 0))
        for k in range(fanout if sampled.numel() else 0):
            top = sampled - fanout + k  # Floyd: a uniform offset in 0..top, or top itself where it is taken
            uniform = torch.rand(sampled.numel(), generator=generator, dtype=torch.float64).to(top.device)
            offset = (uniform * (top + 1)).long().clamp(max=top)  # clamp: a product rounded up to top + 1
            picks[:, k] = torch.where((picks[:, :k] == offset[:, None]).any(1), top, offset)
        return torch.cat([every, (first[:, None] + picks).view(-1)])

    def sample(self, seeds: Tensor, generator: torch.Generator) -> Any:
        """The subgraph around ``seeds`` (distinct global ids): seeds first (local ids ``0..len(seeds)-1``,
        ``label_mask`` on them only), then each hop's new nodes; node- and edge-sized tensors of the graph sliced
        to it (graph-level ones dropped), ``edge_index`` in local ids and ``n_id`` the nodes' global ids."""
        from torch_geometric.data import Data

        position = self.position
        nodes, edges, frontier = [seeds], [], seeds
        position[seeds] = torch.arange(seeds.numel(), device=seeds.device)
        count = seeds.numel()
        for fanout in self.fanouts:
            if frontier.numel() == 0:
                break
            slots = self.incoming(frontier, fanout, generator)
            edges.append(self.edge_ids[slots])
            sources = self.sources[slots]
            frontier = torch.unique(sources[position[sources] < 0])
            position[frontier] = torch.arange(count, count + frontier.numel(), device=seeds.device)
            count += frontier.numel()
            nodes.append(frontier)
        n_id = torch.cat(nodes)
        edge_ids = torch.cat(edges) if edges else seeds.new_empty(0)
        out = Data(edge_index=position[self.graph.edge_index[:, edge_ids]], n_id=n_id, num_nodes=count)
        position[n_id] = -1
        for key, value in self.graph.items():
            if key == "edge_index" or not torch.is_tensor(value) or value.dim() == 0:
                continue
            rows = value.size(0)
            if rows == self.num_edges and ("edge" in key or rows != self.num_nodes):  # PyG's naming breaks ties
                out[key] = value[edge_ids]
            elif rows == self.num_nodes:
                out[key] = value[n_id]
        out.label_mask = torch.arange(count, device=seeds.device) < seeds.numel()
        return out


class SampledSplit(Sequence):
    """A split of one large graph as a sequence of ``{"graph": subgraph}`` samples, one per ``seed_nodes``
    seeds, each sampled when indexed (lazily: one subgraph in memory at a time, whatever the split's size).

    ``shuffle`` (training) permutes the seeds once and draws fresh neighbourhoods at every access, seeded from
    ``(seed, index, access count)``: epochs differ, runs repeat. Without it (evaluation) a chunk's neighbourhood
    depends on ``(seed, index)`` only, so every evaluation scores the same subgraphs.
    """

    def __init__(self, sampler: NeighborSampler, seeds: Tensor, seed_nodes: int, seed: int, shuffle: bool) -> None:
        if shuffle:
            seeds = seeds[torch.randperm(seeds.numel(), generator=generator_for(seed)).to(seeds.device)]
        self.sampler, self.seed, self.shuffle, self.calls = sampler, seed, shuffle, 0
        self.chunks = seeds.split(seed_nodes)

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        chunk = self.chunks[index]  # IndexError past the end, as a list
        index = index % len(self)
        if self.shuffle:
            self.calls += 1
            generator = generator_for(self.seed, index, self.calls)
        else:
            generator = generator_for(self.seed, index)
        return {"graph": self.sampler.sample(chunk, generator)}


def neighbor_splits(splits: dict[str, list], fanouts: list[int], seed_nodes: int, seed: int) -> dict[str, Sequence]:
    """Each split of a node task on one graph (one ``{"graph": Data}`` sample whose ``label_mask`` marks the
    split's labelled nodes) as a :class:`SampledSplit` over those nodes; ``train`` is shuffled. Splits that share
    the graph share its sampler (the CSR is built once). An empty split stays empty."""
    samplers: dict[int, NeighborSampler] = {}
    out: dict[str, Sequence] = {}
    for name, samples in splits.items():
        if not samples:
            out[name] = samples
            continue
        graph = samples[0].get("graph") if len(samples) == 1 and isinstance(samples[0], dict) else None
        if graph is None or getattr(graph, "label_mask", None) is None:
            raise DataError(
                f"train.neighbors: the {name} split is {len(samples)} sample(s), not one graph with labelled nodes "
                "(label_mask); neighbour sampling is for node tasks on one graph",
                hint="remove train.neighbors for graph-level data (batch_size sets its minibatches)",
            )
        if id(graph) not in samplers:
            samplers[id(graph)] = NeighborSampler(graph, fanouts)
        seeds = graph.label_mask.nonzero().view(-1)
        out[name] = SampledSplit(samplers[id(graph)], seeds, seed_nodes, seed, shuffle=name == "train")
    return out
