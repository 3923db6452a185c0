"""``csbm``: contextual stochastic block model, with a set edge homophily and optional random rewiring.

Node ``i`` of class ``c`` has features ``mu_c + noise``; the class means differ only
in the first ``informative`` of ``feature_dim`` dimensions, so features alone
are weakly informative. Edges: ``nodes * degree / 2`` undirected pairs, a share
``homophily`` of them inside a class, the rest across classes. ``rewire``
then moves that share of the edges to uniformly random endpoints: the noisy
input graph the adaptive builder is meant to repair. The true graph's edges
travel along as ``true_edge_index`` for reports.
"""

from __future__ import annotations

import hashlib

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import coalesce, remove_self_loops

from autoglm_graph.sbm import SPLITS, class_masks
from autoglm_graph.specs import CSBMConfig
from autoglm_sdk.plugin import BuildContext, Dataset, Port, TaskSpec


def class_edges(y: Tensor, count: int, same: bool, generator: torch.Generator) -> Tensor:
    """``count`` random pairs ``(i, j)`` with ``y[i] == y[j]`` (``same``) or ``y[i] != y[j]``."""
    n = y.numel()
    classes = int(y.max()) + 1
    members = [torch.nonzero(y == c).view(-1) for c in range(classes)]
    first = torch.randint(0, n, (count,), generator=generator)
    if same:
        pick = torch.empty(count, dtype=torch.long)
        for c in range(classes):
            rows = (y[first] == c).nonzero().view(-1)
            pick[rows] = members[c][torch.randint(0, members[c].numel(), (rows.numel(),), generator=generator)]
        return torch.stack([first, pick])
    # another class uniformly at random, then a member of it
    shift = torch.randint(1, classes, (count,), generator=generator)
    other = (y[first] + shift) % classes
    pick = torch.empty(count, dtype=torch.long)
    for c in range(classes):
        rows = (other == c).nonzero().view(-1)
        pick[rows] = members[c][torch.randint(0, members[c].numel(), (rows.numel(),), generator=generator)]
    return torch.stack([first, pick])


def undirected(pairs: Tensor, n: int) -> Tensor:
    edge_index, _ = remove_self_loops(torch.cat([pairs, pairs.flip(0)], dim=1))
    return coalesce(edge_index, num_nodes=n)


class CSBMDataSource:
    name = "csbm"
    kind = "data"
    Config = CSBMConfig

    def __init__(self, config: CSBMConfig, ctx: BuildContext | None = None) -> None:
        self.config = config
        self.seed = ctx.seed if ctx else 0

    def load(self) -> Dataset:
        c = self.config
        graph_rng = torch.Generator().manual_seed(self.seed)
        sizes = c.class_sizes()
        n = sum(sizes)
        y = torch.arange(c.classes).repeat_interleave(torch.tensor(sizes))
        means = torch.zeros(c.classes, c.feature_dim)
        means_rng = graph_rng if c.means_seed is None else torch.Generator().manual_seed(c.means_seed)
        direction = torch.randn(c.classes, c.informative, generator=means_rng)
        means[:, : c.informative] = c.feature_signal * direction / direction.norm(dim=1, keepdim=True)
        x = means[y] + torch.randn(n, c.feature_dim, generator=graph_rng)

        pairs = n * c.degree // 2
        intra = round(pairs * c.homophily)
        true_pairs = torch.cat(
            [class_edges(y, intra, True, graph_rng), class_edges(y, pairs - intra, False, graph_rng)], dim=1
        )
        noisy_pairs = true_pairs.clone()
        moved = torch.rand(pairs, generator=graph_rng) < c.rewire
        noisy_pairs[1, moved] = torch.randint(0, n, (int(moved.sum()),), generator=graph_rng)
        true_edges, edge_index = undirected(true_pairs, n), undirected(noisy_pairs, n)

        # the labelled nodes depend on the seed and `split` only: several splits of one graph, as in the literature
        split_rng = torch.Generator().manual_seed(self.seed * 7919 + c.split + 1)
        masks = class_masks(y, c.classes, lambda size: c.labelled(size)[0], lambda size: c.labelled(size)[1], split_rng)

        digest = hashlib.sha256()
        for tensor in (x, edge_index, y, *masks.values()):
            digest.update(tensor.numpy().tobytes())
        splits = {
            split: [
                {"graph": Data(x=x, edge_index=edge_index, y=y, label_mask=masks[split], true_edge_index=true_edges)}
            ]
            for split in SPLITS
        }
        return Dataset(
            task=TaskSpec("node", c.classes, tuple(f"class-{i}" for i in range(c.classes))),
            port=Port("samples", frozenset({"graph"}), dim=c.feature_dim),
            splits=splits,
            fingerprint=digest.hexdigest(),
        )
