"""``random-graphs``: seeded synthetic graphs from networkx generators, labelled by their structure.

Each graph is drawn by one of the configured generators (Erdős–Rényi,
Watts–Strogatz, Barabási–Albert, a stochastic block model) with its parameters
drawn from the configured ranges. Tasks:

* ``node_clustering``: each node's clustering coefficient, binned into ``bins``
  classes of about equal size over the training graphs (GraphGym's "balanced"
  binning, as in the ID-GNN study);
* ``generator``: which generator drew the graph (graph classification);
* ``path_length``: the graph's average shortest-path length, binned likewise.

The unbinned values travel along as regression targets (``clustering`` per
node, ``path_length`` per graph) for code that wants them. Node features are
constant (``features = "constant"``: structure is all there is to learn) or
the one-hot degree. Splits are by graph (inductive).
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

import networkx as nx
import numpy as np
import torch
from torch_geometric.data import Data

from autoglm_graph.sbm import SPLITS
from autoglm_graph.specs import RandomGraphsConfig
from autoglm_sdk.plugin import BuildContext, Dataset, Port, TaskSpec


def draw(generator: str, n: int, c: RandomGraphsConfig, rng: random.Random) -> nx.Graph:
    """One graph of ``n`` nodes from ``generator`` with parameters drawn from the config's ranges."""
    seed = rng.randrange(2**31)
    if generator == "erdos_renyi":
        return nx.gnp_random_graph(n, rng.uniform(*c.er_p), seed=seed)
    if generator == "watts_strogatz":
        k = rng.randrange(c.ws_k[0], c.ws_k[1] + 1, 2)
        return nx.connected_watts_strogatz_graph(n, k, rng.uniform(*c.ws_p), seed=seed)
    if generator == "barabasi_albert":
        return nx.barabasi_albert_graph(n, rng.randint(*c.ba_m), seed=seed)
    blocks = rng.randint(*c.sbm_blocks)
    sizes = [n // blocks + (1 if i < n % blocks else 0) for i in range(blocks)]
    p_in, p_out = rng.uniform(*c.sbm_p_in), rng.uniform(*c.sbm_p_out)
    probs = [[p_in if i == j else p_out for j in range(blocks)] for i in range(blocks)]
    return nx.stochastic_block_model(sizes, probs, seed=seed)


def average_path_length(graph: nx.Graph) -> float:
    """Mean shortest-path length over connected pairs (all components)."""
    total, pairs = 0, 0
    for source, lengths in nx.all_pairs_shortest_path_length(graph):
        total += sum(lengths.values())
        pairs += len(lengths) - 1
    return total / max(pairs, 1)


def balanced_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """Bin edges putting about the same number of values in each bin (ties can merge bins)."""
    edges = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])
    return np.unique(edges)


class RandomGraphsDataSource:
    name = "random-graphs"
    kind = "data"
    Config = RandomGraphsConfig

    def __init__(self, config: RandomGraphsConfig, ctx: BuildContext | None = None) -> None:
        self.config = config
        self.seed = ctx.seed if ctx else 0

    def load(self) -> Dataset:
        c = self.config
        rng = random.Random(self.seed)
        counts = {"train": c.train_graphs, "val": c.val_graphs, "test": c.test_graphs}
        drawn: dict[str, list[tuple[int, nx.Graph]]] = {split: [] for split in SPLITS}
        for split in SPLITS:
            for i in range(counts[split]):
                which = i % len(c.generators)  # every generator equally often
                n = rng.randint(*c.nodes)
                drawn[split].append((which, nx.convert_node_labels_to_integers(draw(c.generators[which], n, c, rng))))
        clustering = {
            s: [np.array(list(nx.clustering(g).values()), dtype=np.float64) for _, g in drawn[s]] for s in SPLITS
        }
        path = {s: [average_path_length(g) for _, g in drawn[s]] for s in SPLITS} if c.task == "path_length" else {}
        if c.task == "node_clustering":
            edges = balanced_edges(np.concatenate(clustering["train"]), c.bins)
        elif c.task == "path_length":
            edges = balanced_edges(np.array(path["train"]), c.bins)
        else:
            edges = np.array([])
        classes = len(c.generators) if c.task == "generator" else len(edges) + 1
        digest = hashlib.sha256()
        splits: dict[str, list[dict[str, Any]]] = {}
        for split in SPLITS:
            samples = []
            for index, (which, graph) in enumerate(drawn[split]):
                n = graph.number_of_nodes()
                pairs = np.array(list(graph.edges()), dtype=np.int64).reshape(-1, 2).T
                edge_index = torch.from_numpy(np.concatenate([pairs, pairs[::-1]], axis=1).copy())
                x = self._features(graph, n)
                cc = torch.tensor(clustering[split][index], dtype=torch.float32)
                data = Data(x=x, edge_index=edge_index, clustering=cc)
                sample: dict[str, Any] = {"graph": data, "generator": c.generators[which]}
                if c.task == "node_clustering":
                    data.y = torch.from_numpy(np.digitize(clustering[split][index], edges)).long()
                    data.label_mask = torch.ones(n, dtype=torch.bool)
                elif c.task == "path_length":
                    data.path_length = torch.tensor([path[split][index]])
                    sample["label"] = int(np.digitize(path[split][index], edges))
                else:
                    sample["label"] = which
                digest.update(edge_index.numpy().tobytes())
                samples.append(sample)
            splits[split] = samples
        names = tuple(c.generators) if c.task == "generator" else tuple(f"bin-{i}" for i in range(classes))
        return Dataset(
            task=TaskSpec("node" if c.task == "node_clustering" else "graph", classes, names),
            port=Port("samples", frozenset({"graph"}), dim=self.feature_dim()),
            splits=splits,
            fingerprint=digest.hexdigest(),
        )

    def feature_dim(self) -> int:
        return 1 if self.config.features == "constant" else self.config.max_degree + 1

    def _features(self, graph: nx.Graph, n: int) -> torch.Tensor:
        if self.config.features == "constant":
            return torch.ones(n, 1)
        degree = torch.tensor([min(d, self.config.max_degree) for _, d in graph.degree()])
        return torch.nn.functional.one_hot(degree, self.config.max_degree + 1).float()
