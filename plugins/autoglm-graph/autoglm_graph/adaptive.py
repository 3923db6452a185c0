"""``adaptive``: a graph learned jointly with the reasoner, in the manner of IDGL (Chen, Wu & Zaki, 2020).

For each sample graph with node features ``X`` (``N`` nodes):

1. similarity ``S``: multi-head weighted cosine ``mean_h cos(w_h * x_i, w_h * x_j)``
   (learnable ``w_h``), or a Gaussian kernel ``exp(-|W x_i - W x_j|^2 / 2 sigma^2)``
   over a learnable map ``W`` with ``sigma`` the mean pairwise distance or learned;
2. sparsified: each node keeps its ``k`` most similar nodes (or every pair above
   ``epsilon``), negative similarities dropped; the choice of neighbours is
   discrete, the kept weights are differentiable, so the task loss trains the metric;
3. each node's incoming weights normalised to sum to one and mixed with the given
   graph's: ``lambda * A_given + (1 - lambda) * A_learned``;
4. with ``iterations > 1`` the similarity is measured again on the features
   averaged over the previous round's graph (iterative refinement).

The result carries ``edge_weight``, which the ``gcn`` reasoner uses. Regularisers
on the learned weights ``a_ij`` (IDGL's graph regularisation), added to the
training loss through :meth:`auxiliary_loss`: smoothness
``sum a_ij |x_i - x_j|^2 / N^2`` (= 2 tr(X^T L X) / N^2), a log-degree barrier
``-mean_i log(sum_j a_ij)`` against isolated nodes, and ``sum a_ij^2 / N^2``
against density.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from autoglm_graph.given import GivenGraph
from autoglm_graph.specs import AdaptiveConfig, GivenConfig
from autoglm_graph.structure import degree_histogram, graph_stats, with_edges
from autoglm_sdk.plugin import BuildContext, SemanticGraph


class AdaptiveGraph(nn.Module):
    name = "adaptive"
    kind = "graph_builder"
    Config = AdaptiveConfig

    def __init__(self, config: AdaptiveConfig, ctx: BuildContext) -> None:
        super().__init__()
        self.config = config
        self.given = GivenGraph(GivenConfig(), ctx)
        dim = ctx.input.dim
        if dim is None:
            raise ValueError("adaptive needs the node feature size (ctx.input.dim)")
        if config.similarity == "weighted_cosine":
            # ones: plain cosine at the start, each head then learns which feature dimensions matter
            self.head_weights = nn.Parameter(torch.ones(config.heads, dim) + 0.01 * torch.randn(config.heads, dim))
        else:
            self.projection = nn.Linear(dim, dim, bias=False)
            nn.init.eye_(self.projection.weight)
            if config.sigma == "learned":
                self.log_sigma = nn.Parameter(torch.zeros(()))
        if config.learn_mix:
            start = min(max(config.mix, 1e-3), 1 - 1e-3)
            self.mix_logit = nn.Parameter(torch.logit(torch.tensor(start)))
        self._aux: Tensor | None = None
        self.history: list[dict[str, Any]] = []  # the learned graph at each evaluation
        self.last: dict[str, Any] = {}

    # -------------------------------------------------------------- similarity

    def _embed(self, x: Tensor) -> Tensor:
        if self.config.similarity == "weighted_cosine":
            return F.normalize(x.unsqueeze(0) * self.head_weights.unsqueeze(1), dim=-1)  # [H, N, F]
        return self.projection(x)

    def _rows(self, z: Tensor, rows: Tensor, sigma: Tensor | None) -> Tensor:
        """Similarity of the nodes ``rows`` to every node: ``[len(rows), N]``."""
        if self.config.similarity == "weighted_cosine":
            return (z[:, rows] @ z.transpose(1, 2)).mean(0)
        distance = torch.cdist(z[rows], z)
        return torch.exp(-distance.pow(2) / (2 * sigma.pow(2)))

    def _pairs(self, z: Tensor, pairs: Tensor, sigma: Tensor | None) -> Tensor:
        """Similarity along the given pairs ``[2, P]``: ``[P]``."""
        if self.config.similarity == "weighted_cosine":
            return (z[:, pairs[0]] * z[:, pairs[1]]).sum(-1).mean(0)
        return torch.exp(-(z[pairs[0]] - z[pairs[1]]).pow(2).sum(-1) / (2 * sigma.pow(2)))

    def _sigma(self, z: Tensor) -> Tensor | None:
        if self.config.similarity != "gaussian":
            return None
        if self.config.sigma == "learned":
            return self.log_sigma.exp() * self._mean_distance(z).detach()
        return self._mean_distance(z).detach()  # a scale, not a path for gradients

    def _mean_distance(self, z: Tensor) -> Tensor:
        n = z.size(0)
        sample = z if n <= 2048 else z[torch.randperm(n, generator=torch.Generator().manual_seed(0))[:2048]]
        return torch.pdist(sample).mean().clamp_min(1e-6) if sample.size(0) > 1 else z.new_tensor(1.0)

    def learn(self, z: Tensor, sigma: Tensor | None, n: int) -> tuple[Tensor, Tensor]:
        """Sparse learned edges ``neighbour -> node`` among ``n`` nodes embedded as ``z`` (``_embed``), and their
        weights in ``[0, 1]`` (before normalisation)."""
        c = self.config
        sources, targets, weights = [], [], []
        for start in range(0, n, c.chunk):
            rows = torch.arange(start, min(start + c.chunk, n), device=z.device)
            sim = self._rows(z, rows, sigma)
            self_mask = torch.zeros_like(sim, dtype=torch.bool)
            self_mask[torch.arange(rows.numel()), rows] = True
            sim = sim.masked_fill(self_mask, float("-inf"))
            if c.sparsify == "knn":
                k = min(c.k, n - 1)
                value, index = sim.topk(k, dim=1)
                target = rows.repeat_interleave(k)
                source, value = index.reshape(-1), value.reshape(-1)
            else:
                keep = sim > c.epsilon
                row, source = keep.nonzero(as_tuple=True)
                target, value = rows[row], sim[row, source]
            positive = value > 0  # a dissimilar neighbour is no neighbour
            sources.append(source[positive])
            targets.append(target[positive])
            weights.append(value[positive])
        return torch.stack([torch.cat(sources), torch.cat(targets)]), torch.cat(weights)

    # ----------------------------------------------------------------- forward

    def forward(self, samples: list[dict[str, Any]]) -> SemanticGraph:
        graphs, aux, learned = [], [], []
        for sample in samples:
            graph = self.given([sample])
            edge_index, edge_weight, loss, learned_edges = self._graph(graph)
            graphs.append(with_edges(graph, edge_index, edge_weight))
            aux.append(loss)
            learned.append(learned_edges)
        batch = SemanticGraph.collate(graphs)
        self._aux = torch.stack(aux).mean() if self.training else None
        if not self.training:
            self._record(batch, learned)
        return batch

    def _graph(self, graph: SemanticGraph) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        c = self.config
        x, n = graph.x, graph.num_nodes
        features = x
        given = graph.edge_index
        mix: Any = (torch.sigmoid(self.mix_logit) if c.learn_mix else c.mix) if given.numel() else 0.0
        for _ in range(c.iterations):
            z = self._embed(features)
            sigma = self._sigma(z)
            learned, raw = self.learn(z, sigma, n)
            given_weight = None
            if mix > 0 and c.reweight_given:  # the given edges weighted by the learned similarity too
                given_weight = self._pairs(z, given, sigma).clamp_min(0) + 1e-6
            edge_index, edge_weight = self._mixed(given, given_weight, learned, raw, mix, n)
            # the next round measures similarity on features averaged over this round's graph
            features = _propagate(x, edge_index, edge_weight, n)
        loss = self._regularisers(x, learned, raw, n)
        if self.training and c.supervision:
            loss = loss + c.supervision * self._supervision(features, graph)
        return edge_index, edge_weight, loss, learned

    def _supervision(self, features: Tensor, graph: SemanticGraph) -> Tensor:
        """Among the labelled nodes of this (training) graph, same-label pairs should be similar and
        different-label pairs not: ``mean(1 - s | same) + mean(relu(s) | different)``."""
        y, mask = getattr(graph, "y", None), getattr(graph, "label_mask", None)
        if y is None or mask is None or int(mask.sum()) < 2:
            return features.new_zeros(())
        nodes = mask.nonzero().view(-1)[:512]  # a bounded number of pairs
        z = self._embed(features[nodes])
        sim = self._rows(z, torch.arange(nodes.numel(), device=features.device), self._sigma(z))
        same = y[nodes].unsqueeze(0) == y[nodes].unsqueeze(1)
        off = ~torch.eye(nodes.numel(), dtype=torch.bool, device=features.device)
        pos, neg = same & off, ~same
        loss = features.new_zeros(())
        if pos.any():
            loss = loss + (1 - sim[pos]).mean()
        if neg.any():
            loss = loss + sim[neg].clamp_min(0).mean()
        return loss

    @staticmethod
    def _mixed(
        given: Tensor, given_weight: Tensor | None, learned: Tensor, raw: Tensor, mix: float, n: int
    ) -> tuple[Tensor, Tensor]:
        from torch_geometric.utils import coalesce

        weight = (1 - mix) * _normalise_incoming(learned, raw, n)
        if mix > 0:
            if given_weight is None:
                given_weight = torch.ones(given.size(1), device=raw.device, dtype=raw.dtype)
            weight = torch.cat([mix * _normalise_incoming(given, given_weight, n), weight])
            learned = torch.cat([given, learned], dim=1)
        return coalesce(learned, weight, num_nodes=n, reduce="sum")

    def _regularisers(self, x: Tensor, edges: Tensor, weight: Tensor, n: int) -> Tensor:
        c = self.config
        loss = x.new_zeros(())
        if c.smoothness:
            loss = loss + c.smoothness * (weight * (x[edges[0]] - x[edges[1]]).pow(2).sum(-1)).sum() / n**2
        if c.degree_barrier:
            degree = torch.zeros(n, device=x.device, dtype=weight.dtype).index_add(0, edges[1], weight)
            loss = loss - c.degree_barrier * torch.log(degree + 1e-8).mean()
        if c.sparsity:
            loss = loss + c.sparsity * weight.pow(2).sum() / n**2
        return loss

    def auxiliary_loss(self) -> Tensor | None:
        """The regularisers of the last training forward pass (the trainer adds them to the task loss)."""
        return self._aux

    # ------------------------------------------------------------------ report

    def _record(self, batch: SemanticGraph, learned: list[Tensor]) -> None:
        """Figures of the graph the reasoner saw (``graph_*``) and of the learned part alone (``learned_*``);
        homophily uses every node's label, so it is a report, never a training signal."""
        y = getattr(batch, "y", None)
        stats = {
            f"graph_{k}": v for k, v in graph_stats(batch.edge_index, batch.num_nodes, y, batch.edge_weight).items()
        }
        stats["graph_degree_histogram"] = degree_histogram(batch.edge_index, batch.num_nodes)
        offsets = batch.ptr[:-1].tolist() if getattr(batch, "ptr", None) is not None else [0]
        edges = torch.cat([e + o for e, o in zip(learned, offsets)], dim=1)
        stats.update(
            {
                f"learned_{k}": v
                for k, v in graph_stats(edges, batch.num_nodes, y).items()
                if k in ("edges", "density", "mean_degree", "degree_min", "degree_max", "isolated_nodes", "homophily")
            }
        )
        true_edges = getattr(batch, "true_edge_index", None)
        if true_edges is not None and true_edges.numel():
            found = set(map(tuple, edges.t().tolist()))
            true = set(map(tuple, true_edges.t().tolist()))
            stats["learned_edges_in_true_graph"] = len(found & true) / max(len(found), 1)
        self.last = stats
        self.history.append(
            {
                k: stats[k]
                for k in (
                    "learned_density",
                    "learned_isolated_nodes",
                    "learned_homophily",
                    "graph_homophily",
                    "learned_edges_in_true_graph",
                )
                if k in stats
            }
        )

    def target_density(self) -> float | None:
        """The density the configuration asks for: k of the other N - 1 nodes (kNN sparsity only)."""
        nodes = self.last.get("graph_nodes", 0)
        return self.config.k / (nodes - 1) if self.config.sparsify == "knn" and nodes > 1 else None

    def report(self) -> dict[str, Any]:
        c = self.config
        mix = float(torch.sigmoid(self.mix_logit.detach())) if c.learn_mix else c.mix
        out: dict[str, Any] = {"similarity": c.similarity, "sparsify": c.sparsify, "mix": round(mix, 4)}
        if self.target_density() is not None:
            out["target_density"] = round(self.target_density(), 5)
        out.update({k: round(v, 5) if isinstance(v, float) else v for k, v in self.last.items()})
        if self.history:
            first, last = self.history[0], self.history[-1]
            out["during_training"] = ", ".join(f"{k} {first[k]:.4g} -> {last[k]:.4g}" for k in first if k in last)
            out["evaluations"] = len(self.history)
        return out


def _normalise_incoming(edges: Tensor, weight: Tensor, n: int) -> Tensor:
    """Each node's incoming weights divided by their sum (a row-stochastic adjacency)."""
    total = torch.zeros(n, device=weight.device, dtype=weight.dtype).index_add(0, edges[1], weight)
    return weight / total[edges[1]].clamp_min(1e-12)


def _propagate(x: Tensor, edges: Tensor, weight: Tensor, n: int) -> Tensor:
    """Half each node's own features, half the weighted mean of its neighbours'."""
    out = torch.zeros_like(x).index_add(0, edges[1], x[edges[0]] * weight.unsqueeze(-1))
    return 0.5 * x + 0.5 * out
